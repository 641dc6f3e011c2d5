"""Semantic Versioning 2.0.0 (https://semver.org), strict.

Precedence (§11): major, minor and patch numerically; a pre-release sorts
before its release; pre-release identifiers compare left to right, numeric ones
numerically and below alphanumeric ones, which compare in ASCII order; more
identifiers win when all before are equal. Build metadata (§10) is ignored.
"""

from __future__ import annotations

import re
from typing import Final

from patchwarden.versions.base import InvalidVersion, VersionKey, cmp_keys

SYNTAX: Final = "SemVer 2.0.0: MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]"

_NUM: Final = r"(?:0|[1-9][0-9]*)"
_PRE_ID: Final = rf"(?:{_NUM}|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
_BUILD_ID: Final = r"[0-9A-Za-z-]+"
# The regular expression suggested by semver.org, restricted to ASCII.
_SEMVER: Final = re.compile(
    rf"({_NUM})\.({_NUM})\.({_NUM})"
    rf"(?:-({_PRE_ID}(?:\.{_PRE_ID})*))?"
    rf"(?:\+({_BUILD_ID}(?:\.{_BUILD_ID})*))?"
)
_RELEASE: Final = (1,)  # no pre-release: after every pre-release of the same version
_NUMERIC_ID: Final = 0
_ALNUM_ID: Final = 1


class SemverScheme:
    """SemVer 2.0.0 precedence."""

    name: Final = "semver"

    def parse(self, text: str) -> VersionKey:
        match = _SEMVER.fullmatch(text)
        if match is None:
            raise InvalidVersion("semver", text, _explain(text), SYNTAX)
        major, minor, patch, prerelease, _build = match.groups()
        if prerelease is None:
            return (int(major), int(minor), int(patch), _RELEASE)
        identifiers = tuple(
            (_NUMERIC_ID, int(part)) if part.isdigit() else (_ALNUM_ID, part)
            for part in prerelease.split(".")
        )
        return (int(major), int(minor), int(patch), (0, *identifiers))

    def compare(self, a: str, b: str) -> int:
        return cmp_keys(self.parse(a), self.parse(b))

    def validate(self, text: str) -> None:
        self.parse(text)


def _explain(text: str) -> str:
    """The rule a non-matching string most likely breaks."""
    if not text:
        return "version must not be empty"
    if any(char.isspace() for char in text):
        return "version must not contain whitespace"
    core = re.split(r"[-+]", text, maxsplit=1)[0]
    parts = core.split(".")
    if len(parts) != 3 or not all(p.isascii() and p.isdigit() for p in parts):
        return "MAJOR.MINOR.PATCH must be three dot-separated numbers"
    if any(len(p) > 1 and p[0] == "0" for p in parts):
        return "numbers must not have leading zeros"
    return "pre-release and build identifiers must be non-empty [0-9A-Za-z-] (no leading zeros)"


SEMVER: Final = SemverScheme()
