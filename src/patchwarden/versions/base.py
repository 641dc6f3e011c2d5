"""The interface every version scheme implements, and the errors they raise.

A scheme turns a version string into a *sort key*: a plain tuple of ints and
strings whose built-in ordering is the scheme's ordering. Keys are computed once
at the edge; matching then sorts and bisects keys with C-speed tuple comparison
instead of calling back into Python for every comparison.

Two levels of strictness, on purpose:

* ``parse`` refuses text that cannot be a version of the scheme at all
  (empty, whitespace, a non-numeric epoch ...). Where the scheme's own tool
  still orders text that breaks the scheme's syntax rules (dpkg compares
  upstream versions that do not start with a digit, apk orders invalid
  versions), ``parse`` does the same, so Patchwarden never disagrees with the
  package manager about what is installed.
* ``validate`` enforces the syntax rules as well; use it for input that should be
  well formed (advisories, API bodies, baselines).
"""

from __future__ import annotations

from typing import Protocol, TypeAlias, runtime_checkable

from patchwarden.errors import InvalidInput

VersionKey: TypeAlias = tuple[object, ...]
"""A comparable, hashable key; equal keys mean equal versions under the scheme."""


class InvalidVersion(InvalidInput):
    """A version string broke its scheme's rules."""

    code = "invalid_version"

    def __init__(self, scheme: str, version: str, rule: str, syntax: str) -> None:
        self.scheme = scheme
        self.version = version
        self.rule = rule
        self.syntax = syntax
        super().__init__(f"{scheme} version {version!r}: {rule} ({syntax})")


class UnknownVersionScheme(InvalidInput):
    """A scheme name that is not in the registry."""

    code = "unknown_version_scheme"

    def __init__(self, name: str, valid: tuple[str, ...]) -> None:
        self.name = name
        self.valid = valid
        super().__init__(f"unknown version scheme {name!r}; valid schemes: {', '.join(valid)}")


@runtime_checkable
class VersionScheme(Protocol):
    """One way of ordering versions (dpkg, rpm, apk, PEP 440, SemVer ...)."""

    @property
    def name(self) -> str:
        """The registry name, also used in configuration and storage."""
        ...

    def parse(self, text: str) -> VersionKey:
        """The sort key of ``text``; raises :class:`InvalidVersion`."""
        ...

    def compare(self, a: str, b: str) -> int:
        """-1, 0 or 1 as ``a`` is older than, equal to or newer than ``b``."""
        ...

    def validate(self, text: str) -> None:
        """Raise :class:`InvalidVersion` unless ``text`` follows the scheme's syntax."""
        ...


def cmp_keys(a: VersionKey, b: VersionKey) -> int:
    """-1, 0 or 1 from two keys of the same scheme."""
    return (a > b) - (a < b)
