"""Package name patterns for approval rules: shell-style globs, checked strictly.

A pattern is made of package-name characters (ASCII letters, digits and
``+ - . _ :``) and the glob operators ``*`` (any run of characters, also
none), ``?`` (exactly one character) and ``[...]`` (one character of a set:
``[abc]``, ranges ``[0-9]``, negation ``[!abc]``). Matching is
case-sensitive, as package managers are ("NetworkManager" is not
"networkmanager"), and always covers the whole name.

Anything else is refused with :class:`InvalidPattern` naming the character
and its position: regular expressions (``^foo$``, ``(a|b)``, ``\\d``), spaces,
``/`` or ``@``, unbalanced brackets, empty sets, reversed ranges. The strict
alphabet means a pattern can never be mistaken for something else, and a rule
that looks like a regex fails loudly instead of silently matching nothing.

>>> PackagePattern.parse("linux-image-*").matches("linux-image-6.1.0-18-amd64")
True
>>> PackagePattern.parse("lib[!c]*").matches("libc6")
False
"""

from __future__ import annotations

import fnmatch
import re
import string
from dataclasses import dataclass, field
from typing import Final

from patchwarden.policy.errors import InvalidPattern

MAX_PATTERN_LENGTH: Final = 255
NAME_CHARACTERS: Final = frozenset(string.ascii_letters + string.digits + "+-._:")
_GLOB_OPERATORS: Final = frozenset("*?[]")
# Characters that only make sense in a regular expression: name them as such.
_REGEX_CHARACTERS: Final = frozenset("^$()|\\{}")


def _bad_character(text: str, index: int) -> InvalidPattern:
    char = text[index]
    if char in _REGEX_CHARACTERS:
        problem = (
            f"{char!r} is a regular-expression character; regular expressions are not supported"
        )
    elif char.isspace():
        problem = f"whitespace ({char!r}) is not allowed"
    else:
        problem = f"character {char!r} is not allowed in a package name pattern"
    return InvalidPattern(text, index + 1, problem)


def _check_set(text: str, start: int) -> int:
    """Validate the set opened by ``[`` at ``start``; return the index of its ``]``."""
    i = start + 1
    if i < len(text) and text[i] == "!":
        i += 1
    first = i
    while i < len(text):
        char = text[i]
        if char == "]":
            if i == first:
                raise InvalidPattern(text, start + 1, "empty character set '[]'")
            return i
        if char not in NAME_CHARACTERS:
            if char in _GLOB_OPERATORS or char == "!":
                raise InvalidPattern(
                    text,
                    i + 1,
                    f"{char!r} inside [...] is not allowed (a set stands for one "
                    "package-name character; '!' only right after '[')",
                )
            raise _bad_character(text, i)
        # "a-z": a range, unless the '-' is the set's last character (then literal).
        if i + 2 < len(text) and text[i + 1] == "-" and text[i + 2] != "]":
            end = text[i + 2]
            if end not in NAME_CHARACTERS:
                raise _bad_character(text, i + 2)
            if end < char:
                raise InvalidPattern(text, i + 1, f"range '{char}-{end}' is reversed")
            i += 3
            continue
        i += 1
    raise InvalidPattern(text, start + 1, "'[' is never closed with ']'")


def _validate(text: object) -> str:
    if not isinstance(text, str):
        raise InvalidPattern(str(text), 0, f"a pattern must be text, not {type(text).__name__}")
    if not text:
        raise InvalidPattern(text, 0, "the pattern is empty")
    if len(text) > MAX_PATTERN_LENGTH:
        raise InvalidPattern(text[:40] + "...", 0, f"longer than {MAX_PATTERN_LENGTH} characters")
    i = 0
    while i < len(text):
        char = text[i]
        if char == "[":
            i = _check_set(text, i)
        elif char == "]":
            raise InvalidPattern(text, i + 1, "']' without a matching '['")
        elif char not in NAME_CHARACTERS and char not in "*?":
            raise _bad_character(text, i)
        i += 1
    return text


@dataclass(frozen=True)
class PackagePattern:
    """A validated package name glob, compiled once. Equal when the text is equal.

    Build with :meth:`parse` (or the constructor: both validate).
    """

    text: str
    _regex: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _validate(self.text)
        literal = not any(char in _GLOB_OPERATORS for char in self.text)
        # fnmatch.translate gives a full-match regex whose sets match what we validated;
        # a literal needs none (plain equality is faster).
        regex = None if literal else re.compile(fnmatch.translate(self.text))
        object.__setattr__(self, "_regex", regex)

    @classmethod
    def parse(cls, text: str) -> PackagePattern:
        """The pattern of ``text``; :class:`InvalidPattern` naming the fault otherwise."""
        return cls(text)

    @property
    def is_literal(self) -> bool:
        """True when the pattern has no glob operator and matches one name only."""
        return self._regex is None

    def matches(self, name: str) -> bool:
        """Whether the whole of ``name`` matches (case-sensitive)."""
        if self._regex is None:
            return name == self.text
        return self._regex.match(name) is not None

    def __str__(self) -> str:
        return self.text
