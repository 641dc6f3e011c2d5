"""RPM versions: ``[epoch:]version[-release]`` EVR strings, ordered as rpm does.

Epochs compare as numbers (missing = 0), then version and release with
``rpmvercmp``. As in rpm's ``rpmverCmp`` a missing release sorts before any
release ("1.0" < "1.0-1"); range matching that treats a release-less bound as
"any release" (rpm's dependency overlap rule) belongs to the matcher, not here.

``rpmvercmp`` drops every character that is not an ASCII letter, digit, ``~`` or
``^`` and compares the remaining segments in order. The key gives each segment a
rank so that plain tuple ordering reproduces its rules::

    ~ (0)  <  end of string (1)  <  ^ (2)  <  letters (3)  <  digits (4)

letters compare as ASCII strings, digits as numbers.
"""

from __future__ import annotations

import re
from typing import Final

from patchwarden.versions.base import InvalidVersion, VersionKey, cmp_keys

SYNTAX: Final = "rpm: [epoch:]version[-release]"

_TILDE: Final = 0
_END: Final = 1
_CARET: Final = 2
_ALPHA: Final = 3
_NUMERIC: Final = 4
_NO_RELEASE: Final = 0
_HAS_RELEASE: Final = 1

_SEGMENTS: Final = re.compile(r"([0-9]+)|([A-Za-z]+)|(~)|(\^)")
_WHITESPACE: Final = re.compile(r"\s")
_EPOCH: Final = re.compile(r"[0-9]+")
# rpmbuild's ALLOWED_CHARS_VERREL minus the macro characters "%{}".
_PART_CHARS: Final = re.compile(r"[A-Za-z0-9._+~^]+")


def segment_key(text: str) -> VersionKey:
    """Key of one version or release string under ``rpmvercmp``; any text is accepted."""
    key: list[object] = []
    for digits, alpha, tilde, _caret in _SEGMENTS.findall(text):
        if digits:
            key += (_NUMERIC, int(digits))
        elif alpha:
            key += (_ALPHA, alpha)
        elif tilde:
            key += (_TILDE, 0)
        else:
            key += (_CARET, 0)
    key.append(_END)
    return tuple(key)


def rpmvercmp(a: str, b: str) -> int:
    """rpm's ``rpmvercmp`` on two bare version (or release) strings: -1, 0 or 1."""
    return cmp_keys(segment_key(a), segment_key(b))


def _invalid(text: str, rule: str) -> InvalidVersion:
    return InvalidVersion("rpm", text, rule, SYNTAX)


def split(text: str) -> tuple[int, str, str | None]:
    """``(epoch, version, release)``; ``release`` is ``None`` when absent."""
    if not text:
        raise _invalid(text, "version must not be empty")
    if _WHITESPACE.search(text):
        raise _invalid(text, "version must not contain whitespace")
    epoch = 0
    rest = text
    epoch_text, colon, after = text.partition(":")
    if colon:
        if not epoch_text:
            raise _invalid(text, "epoch before ':' is empty")
        if not _EPOCH.fullmatch(epoch_text):
            raise _invalid(text, "epoch must be a number")
        epoch = int(epoch_text)
        rest = after
    version, hyphen, release_text = rest.rpartition("-")
    release: str | None = release_text
    if not hyphen:
        version, release = rest, None
    elif not release_text:
        raise _invalid(text, "release after the last '-' is empty")
    if not version:
        raise _invalid(text, "version is empty")
    if "-" in version:
        raise _invalid(text, "version must not contain '-' (it separates the release)")
    if not _PART_CHARS.fullmatch(version):
        raise _invalid(text, "version may only contain A-Z a-z 0-9 . _ + ~ ^")
    if release is not None and not _PART_CHARS.fullmatch(release):
        raise _invalid(text, "release may only contain A-Z a-z 0-9 . _ + ~ ^")
    return epoch, version, release


class RpmScheme:
    """rpm ordering of ``[epoch:]version[-release]``."""

    name: Final = "rpm"

    def parse(self, text: str) -> VersionKey:
        epoch, version, release = split(text)
        # Flat is safe: the version key ends with END at a rank position, where a
        # different version key holds another rank, so the release never misaligns.
        if release is None:
            return (epoch, *segment_key(version), _NO_RELEASE)
        return (epoch, *segment_key(version), _HAS_RELEASE, *segment_key(release))

    def compare(self, a: str, b: str) -> int:
        return cmp_keys(self.parse(a), self.parse(b))

    def validate(self, text: str) -> None:
        split(text)


RPM: Final = RpmScheme()
