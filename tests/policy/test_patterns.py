"""Package name patterns: what they match and what they refuse, and why."""

from __future__ import annotations

import fnmatch

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patchwarden.errors import InvalidInput
from patchwarden.policy import InvalidPattern, PackagePattern
from patchwarden.policy.patterns import NAME_CHARACTERS


@pytest.mark.parametrize(
    ("pattern", "name", "matches"),
    [
        ("openssl", "openssl", True),
        ("openssl", "openssl-dev", False),  # the whole name, not a prefix
        ("openssl", "OpenSSL", False),  # case-sensitive
        ("linux-image-*", "linux-image-6.1.0-18-amd64", True),
        ("linux-image-*", "linux-image-", True),  # * may be empty
        ("linux-image-*", "linux-headers-6.1.0-18-amd64", False),
        ("*", "anything+goes", True),
        ("lib?", "libc", True),
        ("lib?", "lib", False),
        ("lib?", "libc6", False),
        ("libc[0-9]", "libc6", True),
        ("libc[0-9]", "libcx", False),
        ("lib[!c]*", "libssl3", True),
        ("lib[!c]*", "libc6", False),
        ("python3.[0-9]*", "python3.11", True),
        ("python3.[0-9]*", "python3-apt", False),  # '.' is a literal dot
        ("g++-1?", "g++-12", True),  # '+' is literal
        ("*:amd64", "libc6:amd64", True),  # multiarch qualifier
        ("[a-]", "-", True),  # '-' last in a set is literal
        ("[-a]", "-", True),
        ("kernel-[0-9.-]*", "kernel-5.14.0", True),
    ],
)
def test_matches(pattern: str, name: str, matches: bool) -> None:
    assert PackagePattern.parse(pattern).matches(name) is matches


@pytest.mark.parametrize(
    ("text", "position", "problem"),
    [
        ("", 0, "the pattern is empty"),
        ("^openssl$", 1, "'^' is a regular-expression character"),
        ("openssl$", 8, "'$' is a regular-expression character"),
        ("(a|b)", 1, "'(' is a regular-expression character"),
        ("lib\\d+", 4, "'\\\\' is a regular-expression character"),
        ("lib{a,b}", 4, "'{' is a regular-expression character"),
        ("open ssl", 5, "whitespace (' ') is not allowed"),
        ("openssl\t", 8, "whitespace"),
        ("@types/node", 1, "character '@' is not allowed"),
        ("a/b", 2, "character '/' is not allowed"),
        ("!openssl", 1, "character '!' is not allowed"),
        ("libé", 4, "character 'é' is not allowed"),
        ("linux-[image", 7, "'[' is never closed"),
        ("linux-image]", 12, "']' without a matching '['"),
        ("lib[]c", 4, "empty character set"),
        ("lib[!]c", 4, "empty character set"),
        ("lib[[a]", 5, "'[' inside [...] is not allowed"),
        ("lib[a*]", 6, "'*' inside [...] is not allowed"),
        ("lib[a!]", 6, "'!' inside [...] is not allowed"),
        ("lib[z-a]", 5, "range 'z-a' is reversed"),
        ("lib[a-$]", 7, "'$' is a regular-expression character"),
        ("lib[^a]", 5, "'^' is a regular-expression character"),
    ],
)
def test_invalid_patterns(text: str, position: int, problem: str) -> None:
    with pytest.raises(InvalidPattern) as info:
        PackagePattern.parse(text)
    error = info.value
    assert error.position == position
    assert problem in error.problem
    assert isinstance(error, InvalidInput) and error.http_status == 422
    assert error.code == "invalid_pattern"
    assert f"invalid package pattern {text!r}" in str(error)
    assert "shell-style globs" in str(error)  # says what would be accepted


def test_too_long_and_not_text() -> None:
    with pytest.raises(InvalidPattern, match="longer than 255"):
        PackagePattern.parse("a" * 256)
    with pytest.raises(InvalidPattern, match="must be text, not int"):
        PackagePattern.parse(42)  # type: ignore[arg-type]


def test_value_semantics() -> None:
    pattern = PackagePattern.parse("linux-*")
    assert pattern == PackagePattern("linux-*")
    assert hash(pattern) == hash(PackagePattern("linux-*"))
    assert str(pattern) == "linux-*"
    assert repr(pattern) == "PackagePattern(text='linux-*')"
    assert not pattern.is_literal
    assert PackagePattern.parse("libc6").is_literal


_NAME = st.text(alphabet=sorted(NAME_CHARACTERS), min_size=1, max_size=20)
_GLOB = st.text(alphabet=[*sorted(NAME_CHARACTERS), "*", "?"], min_size=1, max_size=12)


@given(_GLOB, _NAME)
def test_agrees_with_fnmatchcase(glob: str, name: str) -> None:
    assert PackagePattern.parse(glob).matches(name) is fnmatch.fnmatchcase(name, glob)
