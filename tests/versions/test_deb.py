"""dpkg ordering: rules, errors, and agreement with the real `dpkg --compare-versions`."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patchwarden.errors import InvalidInput
from patchwarden.versions import InvalidVersion
from patchwarden.versions.deb import DEB, split

DPKG = shutil.which("dpkg")
needs_dpkg = pytest.mark.skipif(DPKG is None, reason="dpkg is not installed (Debian/Ubuntu only)")
DPKG_ENV = {"LC_ALL": "C", "PATH": "/usr/bin:/bin"}


@pytest.mark.parametrize(
    ("older", "newer"),
    [
        ("1.0~rc1", "1.0"),  # ~ before the end
        ("1.0", "1.0+b1"),  # end before non-letters
        ("1.0a", "1.0+"),  # letters before non-letters
        ("1.0~~", "1.0~"),
        ("1.0-1", "1.0-1.1"),
        ("1:0.9", "2:0.1"),
        ("9", "10"),
        ("1.0-1~bpo1", "1.0-1"),
        ("2.30-1+deb11u1", "2.30-1+deb11u2"),
        ("1.1.1n-0+deb11u3", "1.1.1n-0+deb11u4"),
    ],
)
def test_ordering_rules(older: str, newer: str) -> None:
    assert DEB.compare(older, newer) == -1
    assert DEB.compare(newer, older) == 1


@pytest.mark.parametrize(
    ("a", "b"), [("1.0", "1.0-0"), ("0:1.0", "1.0"), ("1.09", "1.9"), ("1.0", "1.0")]
)
def test_equal_versions_have_equal_keys(a: str, b: str) -> None:
    assert DEB.compare(a, b) == 0
    assert DEB.parse(a) == DEB.parse(b)
    assert hash(DEB.parse(a)) == hash(DEB.parse(b))


def test_split_takes_first_colon_and_last_hyphen() -> None:
    assert split("1:2.0:3-a-b") == (1, "2.0:3-a", "b")
    assert split("1.0") == (0, "1.0", "")


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("", "version must not be empty"),
        ("1.0 ", "must not contain whitespace"),
        (" 1.0", "must not contain whitespace"),
        ("1 0", "must not contain whitespace"),
        ("a:1", "epoch must be a number"),
        ("-1:1", "epoch must be a number"),
        (":1", "epoch before ':' is empty"),
        ("1:", "nothing after the epoch's ':'"),
        ("99999999999:1", "epoch must be at most 2147483647"),
        ("1.0-", "revision after the last '-' is empty"),
        ("-1", "upstream version is empty"),
        ("1:-1", "upstream version is empty"),
        ("1.0_1", "upstream version may only contain"),
        ("1.0é", "upstream version may only contain"),
        ("1.0-1_2", "revision may only contain"),
        ("1.0-1:2", "epoch must be a number"),  # the first colon starts the epoch
    ],
)
def test_invalid_versions_name_the_rule(text: str, rule: str) -> None:
    with pytest.raises(InvalidVersion) as caught:
        DEB.parse(text)
    message = str(caught.value)
    assert rule in message
    assert message.startswith(f"deb version {text!r}: ")
    assert message.endswith("(dpkg: [epoch:]upstream[-revision])")
    assert isinstance(caught.value, InvalidInput)
    assert caught.value.scheme == "deb"


def test_error_message_format() -> None:
    with pytest.raises(
        InvalidVersion, match=r"^deb version 'a:1': epoch must be a number \(dpkg: "
    ):
        DEB.validate("a:1")


def test_upstream_without_leading_digit_compares_but_does_not_validate() -> None:
    # dpkg warns and still compares; dpkg-deb refuses to build such a package.
    assert DEB.compare("a1.0", "b1.0") == -1
    with pytest.raises(InvalidVersion, match="must start with a digit"):
        DEB.validate("1:a1.0-1")
    DEB.validate("1:1.0-a")


# --- against the real dpkg -------------------------------------------------------------

_ALPHABET = "0123456789aAbz.+~"
_upstream = st.tuples(st.sampled_from("0123456789"), st.text(alphabet=_ALPHABET, max_size=8)).map(
    "".join
)
_revision = st.text(alphabet=_ALPHABET, min_size=1, max_size=5)
_epoch = st.sampled_from(["", "0:", "1:", "2:", "00:", "10:"])


@st.composite
def deb_versions(draw: st.DrawFn) -> str:
    epoch = draw(_epoch)
    upstream = draw(_upstream)
    if draw(st.booleans()):  # hyphens and colons are legal in upstream in these cases
        revision = draw(_revision)
        if draw(st.integers(0, 4)) == 0:
            upstream += "-" + draw(_upstream)
        if epoch and draw(st.integers(0, 4)) == 0:
            upstream += ":" + draw(_upstream)
        return f"{epoch}{upstream}-{revision}"
    return epoch + upstream


@st.composite
def deb_pairs(draw: st.DrawFn) -> tuple[str, str]:
    a = draw(deb_versions())
    if draw(st.booleans()):
        return a, draw(deb_versions())
    # Near misses find the interesting cases: a small edit of the same version.
    cut = draw(st.integers(0, len(a)))
    b = a[:cut] + draw(st.text(alphabet=_ALPHABET, max_size=3)) + a[cut:]
    try:
        DEB.parse(b)
    except InvalidVersion:
        b = a
    return a, b


def _dpkg_says(a: str, op: str, b: str) -> bool:
    assert DPKG is not None
    done = subprocess.run(
        [DPKG, "--compare-versions", a, op, b], env=DPKG_ENV, capture_output=True, check=False
    )
    assert done.returncode in (0, 1), done.stderr
    return done.returncode == 0


def _dpkg_compare(a: str, b: str) -> int:
    if _dpkg_says(a, "lt", b):
        return -1
    return 0 if _dpkg_says(a, "eq", b) else 1


@needs_dpkg
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(deb_pairs())
def test_agrees_with_dpkg(pair: tuple[str, str]) -> None:
    a, b = pair
    ours = DEB.compare(a, b)
    # One dpkg call per example: ask the question our answer implies.
    if not _dpkg_says(a, {-1: "lt", 0: "eq", 1: "gt"}[ours], b):
        pytest.fail(f"deb {a!r} vs {b!r}: ours {ours}, dpkg {_dpkg_compare(a, b)}")


@needs_dpkg
def test_non_digit_upstream_agrees_with_dpkg() -> None:
    for a, b in [("a1", "1"), ("a", "b"), ("~", "a"), ("+1", "1"), ("A", "a")]:
        assert DEB.compare(a, b) == _dpkg_compare(a, b), (a, b)
