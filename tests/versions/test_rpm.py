"""rpm ordering: rules, errors, and agreement with the real rpm library."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patchwarden.versions import InvalidVersion
from patchwarden.versions.rpm import RPM, rpmvercmp, split
from tests.versions.rpm_oracle import RpmOracle, rpm_oracle

__all__ = ["rpm_oracle"]  # the fixture, imported for this module's tests


@pytest.mark.parametrize(
    ("older", "newer"),
    [
        ("1.0", "1.0-1"),  # rpmverCmp: a missing release sorts first
        ("1.0-1", "1.0-1.el8"),
        ("1.0-1.el8", "1.0-2.el8"),
        ("0:2.0-1", "1:1.0-1"),
        ("2.0-1", "1:1.0-1"),  # missing epoch is 0
        ("1.0~rc1-1", "1.0-1"),
        ("1.0-1", "1.0^git1-1"),
        ("1.0a-1", "1.0.1-1"),  # letters before digits
        ("3.10.0-1160.el7", "3.10.0-1160.2.1.el7"),
        ("4.18.0-372.9.1.el8", "4.18.0-372.19.1.el8"),
    ],
)
def test_ordering_rules(older: str, newer: str) -> None:
    assert RPM.compare(older, newer) == -1
    assert RPM.compare(newer, older) == 1


@pytest.mark.parametrize(
    ("a", "b"), [("0:1.0-1", "1.0-1"), ("1.0-1", "1_0-1"), ("01:1.010-1", "1:1.10-1")]
)
def test_equal_versions(a: str, b: str) -> None:
    assert RPM.compare(a, b) == 0
    assert RPM.parse(a) == RPM.parse(b)


def test_split() -> None:
    assert split("2:1.0-3.el9") == (2, "1.0", "3.el9")
    assert split("1.0") == (0, "1.0", None)


def test_rpmvercmp_ignores_separators_but_not_tilde_or_caret() -> None:
    assert rpmvercmp("1.0", "1_0") == 0
    assert rpmvercmp("1.0", "1..0") == 0
    assert rpmvercmp("1.0~", "1.0") == -1
    assert rpmvercmp("1.0^", "1.0") == 1
    assert rpmvercmp("1-2", "1.2") == 0  # a bare segment string: '-' is a separator


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("", "must not be empty"),
        ("1.0 -1", "must not contain whitespace"),
        ("a:1.0", "epoch must be a number"),
        (":1.0", "epoch before ':' is empty"),
        ("1:", "version is empty"),
        ("1.0-", "release after the last '-' is empty"),
        ("-1", "version is empty"),
        ("1.0-1-2", "version must not contain '-'"),
        ("1.0%{dist}", "version may only contain"),
        ("1.0-1:2", "epoch must be a number"),
        ("1.0-1%{?dist}", "release may only contain"),
    ],
)
def test_invalid_versions_name_the_rule(text: str, rule: str) -> None:
    with pytest.raises(InvalidVersion) as caught:
        RPM.parse(text)
    assert rule in str(caught.value)
    assert str(caught.value).endswith("(rpm: [epoch:]version[-release])")


# --- against the real rpm ----------------------------------------------------------

_SEGMENT_ALPHABET = "0123456789abzAZ.~^_+"
_part = st.text(alphabet=_SEGMENT_ALPHABET, min_size=1, max_size=8)


@st.composite
def evrs(draw: st.DrawFn) -> str:
    epoch = draw(st.sampled_from(["", "", "0:", "1:", "2:", "01:", "10:"]))
    version = draw(_part)
    release = draw(st.one_of(st.just(""), _part.map(lambda r: "-" + r)))
    return f"{epoch}{version}{release}"


@st.composite
def evr_pairs(draw: st.DrawFn) -> tuple[str, str]:
    a = draw(evrs())
    if draw(st.booleans()):
        return a, draw(evrs())
    cut = draw(st.integers(0, len(a)))
    b = a[:cut] + draw(st.text(alphabet=_SEGMENT_ALPHABET, max_size=3)) + a[cut:]
    try:
        RPM.parse(b)
    except InvalidVersion:
        b = a
    return a, b


PROPERTY_SETTINGS = settings(
    max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY_SETTINGS
@given(pair=evr_pairs())
def test_evr_agrees_with_rpm(rpm_oracle: RpmOracle, pair: tuple[str, str]) -> None:
    a, b = pair
    assert RPM.compare(a, b) == rpm_oracle.compare(a, b), (a, b)


# Bare segment strings, with separators rpm ignores (no '-' or ':', which would
# make rpm.vercmp split an EVR); rpmvercmp accepts any text.
_raw = st.text(alphabet="0123456789abAZ.~^_+%#é", max_size=10).filter(lambda s: s != "")


@PROPERTY_SETTINGS
@given(a=_raw, b=_raw)
def test_rpmvercmp_agrees_with_rpm(rpm_oracle: RpmOracle, a: str, b: str) -> None:
    assert rpmvercmp(a, b) == rpm_oracle.compare(a, b), (a, b)
