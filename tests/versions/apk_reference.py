"""A line-by-line port of apk-tools 3 ``apk_version_compare_fuzzy`` (src/version.c).

Slow and obviously faithful: the oracle that checks the flat sort keys of
``patchwarden.versions.apk`` on random strings. It works on the token stream of
``apk.tokens`` (itself checked by the upstream vectors).
"""

from __future__ import annotations

from patchwarden.versions.apk import (
    COMMIT_HASH,
    DIGIT,
    END,
    EQUAL,
    GREATER,
    LESS,
    LETTER,
    SUFFIX,
    Token,
    tokens,
)

SUFFIX_NONE = 5


def _sign(a: int | str, b: int | str) -> int:
    if isinstance(a, int) and isinstance(b, int):
        return (a > b) - (a < b)
    assert isinstance(a, str)
    assert isinstance(b, str)
    return (a > b) - (a < b)


def token_cmp(kind: int, a: int | str, b: int | str) -> int:
    """apk's token_cmp: values of two tokens of the same kind."""
    if kind == DIGIT:
        assert isinstance(a, str)
        assert isinstance(b, str)
        if a[0] == "0" or b[0] == "0":  # apk: leading zero -> raw string sort
            return _sign(a, b)
        return _sign(int(a), int(b))
    if kind in (LETTER, COMMIT_HASH):
        return _sign(a, b)  # apk_blob_sort: bytewise, then length
    return _sign(a, b)  # numbers and suffix values


def compare_fuzzy(a: str, b: str, fuzzy: bool) -> int:
    ta: list[Token] = tokens(a)
    tb: list[Token] = tokens(b)
    i = 0
    while ta[i][0] == tb[i][0] and ta[i][0] < END:
        r = token_cmp(ta[i][0], ta[i][1], tb[i][1])
        if r:
            return LESS if r < 0 else GREATER
        i += 1
    (kind_a, value_a), (kind_b, value_b) = ta[i], tb[i]
    if kind_a == kind_b:
        return EQUAL
    if kind_b == END and fuzzy:
        return EQUAL
    if kind_a == SUFFIX and isinstance(value_a, int) and value_a < SUFFIX_NONE:
        return LESS
    if kind_b == SUFFIX and isinstance(value_b, int) and value_b < SUFFIX_NONE:
        return GREATER
    return LESS if kind_a > kind_b else GREATER


def compare(a: str, b: str) -> int:
    return {LESS: -1, EQUAL: 0, GREATER: 1}[compare_fuzzy(a, b, fuzzy=False)]


def match(a: str, mask: int, b: str, fuzzy: bool) -> bool:
    return bool(compare_fuzzy(a, b, fuzzy) & mask)
