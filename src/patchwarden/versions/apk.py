"""Alpine apk versions, ordered as apk-tools 3 (``src/version.c``) orders them.

Syntax: ``digit{.digit}...{letter}{_suffix{number}}...{~hash}{-r#}``. apk reads
a version as a sequence of tokens and compares two versions token by token while
the token *types* agree; at the first type mismatch a pre-release suffix
(``_alpha``, ``_beta``, ``_pre``, ``_rc``) loses, otherwise the version whose
next token comes later in the grammar (or that has ended, or turned invalid)
loses. apk still orders versions that break the syntax: tokens up to the first
invalid one count, and two versions invalid at the same point compare equal.

The key flattens each token into ``(rank, value)`` where the rank reproduces
the mismatch rule, so plain tuple comparison is apk's comparison.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from patchwarden.errors import InvalidInput
from patchwarden.versions.base import InvalidVersion, VersionKey, cmp_keys

SYNTAX: Final = "apk: digit{.digit}...{letter}{_suffix{number}}...{~hash}{-r#}"

# Token types, in apk's order (enum PARTS).
INITIAL_DIGIT: Final = 0
DIGIT: Final = 1
LETTER: Final = 2
SUFFIX: Final = 3
SUFFIX_NO: Final = 4
COMMIT_HASH: Final = 5
REVISION_NO: Final = 6
END: Final = 7
INVALID: Final = 8

# Suffix values (apk's SUFFIX_* enum): below _SUFFIX_NONE are pre-releases.
SUFFIXES: Final = {
    "alpha": 1,
    "beta": 2,
    "pre": 3,
    "rc": 4,
    "cvs": 6,
    "svn": 7,
    "git": 8,
    "hg": 9,
    "p": 10,
}
_SUFFIX_NONE: Final = 5

# Result bits of apk_version_compare / operator masks (apk_version.h).
LESS: Final = 1
EQUAL: Final = 2
GREATER: Final = 4
FUZZY: Final = 8

_DIGITS: Final = re.compile(r"[0-9]*")
_LOWER: Final = re.compile(r"[a-z]*")
_HEX: Final = re.compile(r"[0-9a-f]*")
_WHITESPACE: Final = re.compile(r"\s")

Token = tuple[int, int | str]


def _scan(chars: re.Pattern[str], text: str, pos: int) -> int:
    """End of the run of ``chars`` that starts at ``pos``."""
    match = chars.match(text, pos)
    return match.end() if match else pos


def tokens(text: str) -> list[Token]:
    """apk's token stream for ``text``, ending with an END or INVALID token.

    Values: INITIAL_DIGIT, SUFFIX_NO, REVISION_NO: int; DIGIT: the digit string;
    LETTER: the letter; SUFFIX: its SUFFIXES value; COMMIT_HASH: the hex string;
    END and INVALID: 0.
    """
    return _tokenize(text)[0]


def _tokenize(text: str) -> tuple[list[Token], int]:
    """The tokens and the index where reading stopped (``len(text)`` if valid)."""
    out: list[Token] = []
    n = len(text)
    end = _scan(_DIGITS, text, 0)
    if end == 0:
        return [(INVALID, 0)], 0
    out.append((INITIAL_DIGIT, int(text[:end])))
    token = INITIAL_DIGIT
    i = end
    while True:
        if i == n:
            out.append((END, 0))
            return out, i
        c = text[i]
        if "a" <= c <= "z":
            if token > DIGIT:
                break
            token = LETTER
            out.append((LETTER, c))
            i += 1
        elif c == "." or "0" <= c <= "9":
            if c == ".":
                if token > DIGIT:
                    break
                i += 1
            if token in (INITIAL_DIGIT, DIGIT):
                token = DIGIT
            elif token == SUFFIX:
                token = SUFFIX_NO
            else:
                break
            end = _scan(_DIGITS, text, i)
            if end == i:
                break
            digits = text[i:end]
            out.append((token, digits if token == DIGIT else int(digits)))
            i = end
        elif c == "_":
            if token > SUFFIX_NO:
                break
            end = _scan(_LOWER, text, i + 1)
            suffix = SUFFIXES.get(text[i + 1 : end])
            if suffix is None:
                break
            token = SUFFIX
            out.append((SUFFIX, suffix))
            i = end
        elif c == "~":
            if token >= COMMIT_HASH:
                break
            end = _scan(_HEX, text, i + 1)
            if end == i + 1:
                break
            token = COMMIT_HASH
            out.append((COMMIT_HASH, text[i + 1 : end]))
            i = end
        elif c == "-":
            if token >= REVISION_NO or not text.startswith("-r", i):
                break
            end = _scan(_DIGITS, text, i + 2)
            if end == i + 2:
                break
            token = REVISION_NO
            out.append((REVISION_NO, int(text[i + 2 : end])))
            i = end
        else:
            break
    out.append((INVALID, 0))
    return out, i


# On a type mismatch apk says the version whose next token comes later in the
# grammar is older, except that a pre-release suffix is always older.
_PRE_RELEASE_RANK: Final = 0
_TERMINAL_RANK: Final = {INVALID: 1, END: 2}


def _rank(kind: int) -> int:
    return 9 - kind  # INITIAL_DIGIT 9 ... REVISION_NO 3


def key_from_tokens(toks: Sequence[Token]) -> VersionKey:
    """Flatten tokens into a key whose tuple ordering is apk's ordering."""
    key: list[object] = []
    for kind, value in toks:
        if kind >= END:
            key.append(_TERMINAL_RANK[kind])
            break
        if kind == SUFFIX and isinstance(value, int) and value < _SUFFIX_NONE:
            key += (_PRE_RELEASE_RANK, value)
        elif kind == DIGIT and isinstance(value, str):
            # A leading zero on either side means string sort; "0..." sorts below
            # "1".."9", so (0, str) < (1, int) keeps both rules in one order.
            key += (_rank(kind), (0, value) if value[0] == "0" else (1, int(value)))
        else:
            key += (_rank(kind), value)
    return tuple(key)


def _invalid(text: str, rule: str) -> InvalidVersion:
    return InvalidVersion("apk", text, rule, SYNTAX)


def _check_comparable(text: str) -> None:
    if not text:
        raise _invalid(text, "version must not be empty")
    if _WHITESPACE.search(text):
        raise _invalid(text, "version must not contain whitespace")


def is_valid(text: str) -> bool:
    """apk_version_validate: does ``text`` follow apk's version syntax?"""
    return tokens(text)[-1][0] == END


OPERATORS: Final = {
    "<": LESS,
    "<=": LESS | EQUAL,
    "=": EQUAL,
    ">=": GREATER | EQUAL,
    ">": GREATER,
    "~": FUZZY | EQUAL,
    "<~": LESS | FUZZY | EQUAL,
    ">~": GREATER | FUZZY | EQUAL,
}


def operator_mask(op: str) -> int:
    """apk_version_result_mask: bits of an operator such as ``<=``, ``~`` or ``>~``."""
    mask = OPERATORS.get(op)
    if mask is None:
        raise InvalidInput(f"apk version operator {op!r} is not one of {', '.join(OPERATORS)}")
    return mask


_RESULT_BITS: Final = {-1: LESS, 0: EQUAL, 1: GREATER}


def fuzzy_match(a: str, op: str, b: str) -> bool:
    """apk_version_match: does ``a op b`` hold? ``~`` means "b is a token prefix of a"."""
    mask = operator_mask(op)
    key_a, key_b = APK.parse(a), APK.parse(b)
    if mask & FUZZY and key_b[-1] == _TERMINAL_RANK[END] and key_a[: len(key_b) - 1] == key_b[:-1]:
        return True  # b's tokens are a prefix of a's: apk calls that EQUAL when fuzzy
    return bool(_RESULT_BITS[cmp_keys(key_a, key_b)] & mask)


class ApkScheme:
    """apk-tools ordering; ``parse`` accepts invalid versions as apk does."""

    name: Final = "apk"

    def parse(self, text: str) -> VersionKey:
        _check_comparable(text)
        return key_from_tokens(tokens(text))

    def compare(self, a: str, b: str) -> int:
        return cmp_keys(self.parse(a), self.parse(b))

    def validate(self, text: str) -> None:
        _check_comparable(text)
        toks, stop = _tokenize(text)
        if toks[-1][0] != END:
            rule = f"breaks the syntax at character {stop + 1} ({text[stop:]!r})"
            raise _invalid(text, rule)


APK: Final = ApkScheme()
