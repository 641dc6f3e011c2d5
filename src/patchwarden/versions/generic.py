"""A fallback for ecosystems without a scheme of their own.

The version is cut into runs of ASCII digits and runs of ASCII letters; every
other character only separates runs. Runs compare left to right:

* numbers numerically, letters case-insensitively;
* letters sort below a number at the same position (``1.a`` < ``1.1``), as rpm;
* a version that has run out sorts below one that goes on (``1.0`` < ``1.0.1``,
  ``1.0`` < ``1.0a``);
* trailing zero numbers are ignored, so ``1.0`` == ``1``.

Deliberately simple and predictable: it knows nothing of pre-release markers,
so ``1.0rc1`` > ``1.0``. Use a real scheme wherever one applies.
"""

from __future__ import annotations

import re
from typing import Final

from patchwarden.versions.base import InvalidVersion, VersionKey, cmp_keys

SYNTAX: Final = "generic: runs of digits and letters, other characters separate them"

_RUNS: Final = re.compile(r"([0-9]+)|([A-Za-z]+)")
_WHITESPACE: Final = re.compile(r"\s")
_ALPHA: Final = 0
_NUMERIC: Final = 1


class GenericScheme:
    """Numeric/alphabetic runs, numbers compared as numbers."""

    name: Final = "generic"

    def parse(self, text: str) -> VersionKey:
        if not text:
            raise InvalidVersion("generic", text, "version must not be empty", SYNTAX)
        if _WHITESPACE.search(text):
            raise InvalidVersion("generic", text, "version must not contain whitespace", SYNTAX)
        runs: list[tuple[int, int | str]] = [
            (_NUMERIC, int(digits)) if digits else (_ALPHA, letters.lower())
            for digits, letters in _RUNS.findall(text)
        ]
        if not runs:
            raise InvalidVersion(
                "generic", text, "version must contain a digit or a letter", SYNTAX
            )
        while runs and runs[-1] == (_NUMERIC, 0):
            runs.pop()
        return tuple(runs)

    def compare(self, a: str, b: str) -> int:
        return cmp_keys(self.parse(a), self.parse(b))

    def validate(self, text: str) -> None:
        self.parse(text)


GENERIC: Final = GenericScheme()
