"""apk ordering: token rules, fuzzy matching, validity, and the keys against a port of apk."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patchwarden.errors import InvalidInput
from patchwarden.versions import InvalidVersion
from patchwarden.versions.apk import (
    APK,
    COMMIT_HASH,
    DIGIT,
    END,
    FUZZY,
    INITIAL_DIGIT,
    INVALID,
    LETTER,
    OPERATORS,
    REVISION_NO,
    SUFFIX,
    SUFFIX_NO,
    fuzzy_match,
    is_valid,
    tokens,
)
from tests.versions import apk_reference


def test_tokens() -> None:
    assert tokens("1.2.3a_rc1~abc1-r4") == [
        (INITIAL_DIGIT, 1),
        (DIGIT, "2"),
        (DIGIT, "3"),
        (LETTER, "a"),
        (SUFFIX, 4),
        (SUFFIX_NO, 1),
        (COMMIT_HASH, "abc1"),
        (REVISION_NO, 4),
        (END, 0),
    ]
    assert tokens("1.0bc") == [(INITIAL_DIGIT, 1), (DIGIT, "0"), (LETTER, "b"), (INVALID, 0)]
    assert tokens("x") == [(INVALID, 0)]


@pytest.mark.parametrize(
    ("older", "newer"),
    [
        ("1.0_rc1", "1.0"),  # pre-release suffixes sort before the release
        ("1.0", "1.0_p1"),  # post-release suffixes after
        ("1.0_alpha", "1.0_beta"),
        ("1.0_git20240101", "1.0_p1"),
        ("1.0-r0", "1.0-r1"),
        ("1.0", "1.0a"),
        ("1.0.0", "1.0.1"),
        ("1.02", "1.1"),  # leading zero: string sort, "02" < "1"
        ("1.0~abc", "1.0~abd"),
    ],
)
def test_ordering_rules(older: str, newer: str) -> None:
    assert APK.compare(older, newer) == -1
    assert APK.compare(newer, older) == 1


def test_invalid_versions_compare_as_apk_does() -> None:
    # Tokens up to the first invalid one count; invalid at the same point is equal.
    assert APK.compare("1.0bc", "1.0bd") == 0
    assert APK.compare("1.0", "1.0bc") == -1
    with pytest.raises(InvalidVersion, match=r"character 5 \('c'\)"):
        APK.validate("1.0bc")


@pytest.mark.parametrize(("text", "rule"), [("", "must not be empty"), ("1.0 -r1", "whitespace")])
def test_uncomparable_text_is_refused(text: str, rule: str) -> None:
    with pytest.raises(InvalidVersion, match=rule):
        APK.parse(text)


def test_validate_message_names_the_syntax() -> None:
    with pytest.raises(InvalidVersion) as caught:
        APK.validate("0.1_foobar")
    assert str(caught.value) == (
        "apk version '0.1_foobar': breaks the syntax at character 4 ('_foobar') "
        "(apk: digit{.digit}...{letter}{_suffix{number}}...{~hash}{-r#})"
    )


def test_unknown_operator() -> None:
    with pytest.raises(InvalidInput, match="operator '!~' is not one of"):
        fuzzy_match("1", "!~", "1")


@pytest.mark.parametrize(
    ("a", "op", "b", "expected"),
    [
        ("1.2.3", "<=", "1.2.3", True),
        ("1.2.3", "<", "1.2.3", False),
        ("1.2.3", ">=", "1.2", True),
        ("1.2", "~", "1.2.3", False),
        ("1.20", "~", "1.2", False),  # fuzzy is per token, not per character
    ],
)
def test_operators(a: str, op: str, b: str, expected: bool) -> None:
    assert fuzzy_match(a, op, b) is expected


# --- keys against the faithful port --------------------------------------------------

_PIECES = [
    "0",
    "1",
    "2",
    "9",
    "10",
    "01",
    "00",
    ".",
    ".0",
    ".1",
    ".01",
    "a",
    "b",
    "z",
    "_alpha",
    "_beta",
    "_pre",
    "_rc",
    "_p",
    "_git",
    "_cvs",
    "_foo",
    "_",
    "~",
    "~a1",
    "~0f",
    "-r",
    "-r0",
    "-r1",
    "-r10",
    "-",
    "x",
    "A",
    "__",
]
_piece = st.sampled_from(_PIECES)
apk_texts = st.lists(_piece, min_size=1, max_size=8).map("".join)


@settings(max_examples=500, deadline=None)
@given(a=apk_texts, b=apk_texts)
def test_keys_agree_with_apk_port(a: str, b: str) -> None:
    assert APK.compare(a, b) == apk_reference.compare(a, b), (a, b)


@settings(max_examples=500, deadline=None)
@given(a=apk_texts, b=apk_texts, op=st.sampled_from(sorted(OPERATORS)))
def test_fuzzy_match_agrees_with_apk_port(a: str, b: str, op: str) -> None:
    mask = OPERATORS[op]
    assert fuzzy_match(a, op, b) is apk_reference.match(a, mask, b, bool(mask & FUZZY)), (a, op, b)


@settings(max_examples=300, deadline=None)
@given(text=apk_texts)
def test_validate_agrees_with_is_valid(text: str) -> None:
    try:
        APK.validate(text)
    except InvalidVersion:
        assert not is_valid(text)
    else:
        assert is_valid(text)
