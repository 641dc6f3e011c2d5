"""SemVer 2.0.0: validity and precedence against a direct transcription of §11."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patchwarden.versions import InvalidVersion
from patchwarden.versions.semver import SEMVER


def _spec_compare(a: str, b: str) -> int:
    """§11, written out as the spec words it, for checking the keys."""

    def split(v: str) -> tuple[list[int], list[str] | None]:
        v = v.split("+", 1)[0]
        core, _, pre = v.partition("-")
        return [int(x) for x in core.split(".")], (pre.split(".") if pre else None)

    (ca, pa), (cb, pb) = split(a), split(b)
    if ca != cb:
        return -1 if ca < cb else 1
    if pa is None or pb is None:
        return 0 if pa is pb else (1 if pa is None else -1)
    for x, y in zip(pa, pb, strict=False):
        if x == y:
            continue
        if x.isdigit() and y.isdigit():
            return -1 if int(x) < int(y) else 1
        if x.isdigit() != y.isdigit():
            return -1 if x.isdigit() else 1
        return -1 if x < y else 1
    return (len(pa) > len(pb)) - (len(pa) < len(pb))


_num = st.sampled_from(["0", "1", "2", "10", "11"])
_ident = st.sampled_from(["0", "1", "2", "11", "alpha", "beta", "rc", "a-b", "Z", "1a", "x-1"])


@st.composite
def semvers(draw: st.DrawFn) -> str:
    text = ".".join(draw(st.lists(_num, min_size=3, max_size=3)))
    if draw(st.booleans()):
        text += "-" + ".".join(draw(st.lists(_ident, min_size=1, max_size=3)))
    if draw(st.integers(0, 3)) == 0:
        text += "+" + draw(st.sampled_from(["build.1", "001", "sha.5114f85", "x-y"]))
    return text


@settings(max_examples=500, deadline=None)
@given(a=semvers(), b=semvers())
def test_precedence_matches_spec(a: str, b: str) -> None:
    assert SEMVER.compare(a, b) == _spec_compare(a, b), (a, b)


def test_build_metadata_is_ignored() -> None:
    assert SEMVER.compare("1.0.0+a", "1.0.0+b") == 0
    assert SEMVER.parse("1.0.0-rc.1+a") == SEMVER.parse("1.0.0-rc.1")


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("", "must not be empty"),
        ("1.0", "three dot-separated numbers"),
        ("v1.0.0", "three dot-separated numbers"),
        ("1.0.0.0", "three dot-separated numbers"),
        ("01.0.0", "leading zeros"),
        ("1.0.0-01", "pre-release and build identifiers"),
        ("1.0.0-", "pre-release and build identifiers"),
        ("1.0.0+", "pre-release and build identifiers"),
        ("1.0.0-a..b", "pre-release and build identifiers"),
        ("1.0.0\n", "must not contain whitespace"),
        ("１.0.0", "three dot-separated numbers"),
    ],
)
def test_invalid(text: str, rule: str) -> None:
    with pytest.raises(InvalidVersion, match=rule):
        SEMVER.validate(text)
