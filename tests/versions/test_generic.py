"""The generic fallback scheme."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patchwarden.versions import InvalidVersion
from patchwarden.versions.generic import GENERIC


@pytest.mark.parametrize(
    ("older", "newer"),
    [
        ("1.9", "1.10"),
        ("1.0", "1.0.1"),
        ("1.0", "1.0a"),
        ("1.a", "1.1"),
        ("2023.01.02", "2023.1.10"),
        ("R2019a", "R2019b"),
    ],
)
def test_order(older: str, newer: str) -> None:
    assert GENERIC.compare(older, newer) == -1
    assert GENERIC.compare(newer, older) == 1


@pytest.mark.parametrize(
    ("a", "b"), [("1.0", "1"), ("1.0.0", "1-0"), ("1.A", "1.a"), ("v1_2", "v1.2")]
)
def test_equal(a: str, b: str) -> None:
    assert GENERIC.compare(a, b) == 0
    assert GENERIC.parse(a) == GENERIC.parse(b)


@pytest.mark.parametrize("text", ["", "...", "1 0", "-"])
def test_invalid(text: str) -> None:
    with pytest.raises(InvalidVersion, match="generic version"):
        GENERIC.parse(text)


@given(
    a=st.from_regex(r"[0-9a-z][0-9a-z.-]{0,8}", fullmatch=True),
    b=st.from_regex(r"[0-9a-z][0-9a-z.-]{0,8}", fullmatch=True),
)
def test_compare_is_antisymmetric(a: str, b: str) -> None:
    assert GENERIC.compare(a, b) == -GENERIC.compare(b, a)
