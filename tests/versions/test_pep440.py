"""PEP 440: normalisation, invalid strings, and the plain-tuple key against packaging."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.version import Version

from patchwarden.versions import InvalidVersion
from patchwarden.versions.base import cmp_keys
from patchwarden.versions.pep440 import PEP440, normalize
from tests.versions.vectors import pep440_normalization


def test_normalisations_from_packaging() -> None:
    cases = pep440_normalization()["normalized"]
    assert len(cases) == 102
    wrong = [
        (c["version"], normalize(c["version"]))
        for c in cases
        if normalize(c["version"]) != c["normalized"]
    ]
    assert wrong == []
    # Differently spelt, equal versions have equal keys.
    assert all(PEP440.parse(c["version"]) == PEP440.parse(c["normalized"]) for c in cases)


def test_invalid_strings_from_packaging_are_rejected() -> None:
    invalid = pep440_normalization()["invalid"]
    assert len(invalid) == 20
    for text in invalid:
        with pytest.raises(InvalidVersion) as caught:
            PEP440.validate(text)
        assert str(caught.value).startswith(f"pep440 version {text!r}: not a valid PEP 440")


def test_rules() -> None:
    assert PEP440.compare("1.0.dev1", "1.0a1") == -1
    assert PEP440.compare("1.0rc1", "1.0") == -1
    assert PEP440.compare("1.0", "1.0.post1") == -1
    assert PEP440.compare("1.0", "1.0+local") == -1
    assert PEP440.compare("1.0+abc", "1.0+1") == -1  # strings before numbers in local labels
    assert PEP440.compare("1!0.1", "2.0") == 1
    assert PEP440.compare("1.0.0", "1") == 0


_n = st.integers(0, 12).map(str)


@st.composite
def pep440_versions(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(["", "", "1!", "0!"]))
    text += ".".join(draw(st.lists(_n, min_size=1, max_size=4)))
    text += draw(st.sampled_from(["", "", "a", "b", "rc", "alpha", "-beta", ".c", "pre"]))
    if text[-1].isalpha():
        text += draw(st.sampled_from(["", "0", "1", "2"]))
    text += draw(st.sampled_from(["", "", ".post1", "-1", ".post0", "post2", "_rev3"]))
    text += draw(st.sampled_from(["", "", ".dev0", ".dev3", "dev"]))
    text += draw(st.sampled_from(["", "", "+ubuntu1", "+1", "+abc.1", "+1.abc", "+01", "+a-b_c"]))
    return text


@settings(max_examples=500, deadline=None)
@given(a=pep440_versions(), b=pep440_versions())
def test_key_order_matches_packaging(a: str, b: str) -> None:
    va, vb = Version(a), Version(b)
    expected = (va > vb) - (va < vb)
    key_a, key_b = PEP440.parse(a), PEP440.parse(b)
    assert cmp_keys(key_a, key_b) == expected, (a, b)
    assert (key_a == key_b) == (va == vb)


@pytest.mark.parametrize("text", ["", "v", "1.0-", "1.0.x"])
def test_invalid(text: str) -> None:
    with pytest.raises(InvalidVersion, match="PEP 440"):
        PEP440.parse(text)
