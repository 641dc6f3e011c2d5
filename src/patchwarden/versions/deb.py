"""Debian package versions, ordered exactly as ``dpkg --compare-versions``.

``[epoch:]upstream[-revision]``: the epoch ends at the first colon, the revision
starts after the last hyphen. Upstream and revision are compared with dpkg's
``verrevcmp``: alternating non-digit and digit runs; in non-digit runs ``~`` sorts
before the end of the run, which sorts before letters, which sort before every
other character; digit runs compare as numbers.

The key encodes each part as ``(run, number, run, number, ..., END)`` where
``run`` is the non-digit run translated so that plain ``str`` ordering is dpkg's
``order()`` ordering, followed by a terminator that sorts where dpkg's "end of
run" does. ``END`` (a lone terminator) closes the part: it sorts below any
further run, except one starting with ``~``, exactly like dpkg running off the
end of the shorter string.
"""

from __future__ import annotations

import re
from typing import Final

from patchwarden.versions.base import InvalidVersion, VersionKey, cmp_keys

SYNTAX: Final = "dpkg: [epoch:]upstream[-revision]"
EPOCH_MAX: Final = 2**31 - 1  # dpkg stores the epoch in an int

# dpkg order(): '~' < end of run (and digits) < letters (by ASCII) < others (ASCII + 256).
_TILDE: Final = "\x01"
_END: Final = "\x02"
_ORDER: Final = str.maketrans({"~": _TILDE} | {c: chr(ord(c) + 256) for c in ".+-:"})

_DIGIT_RUNS: Final = re.compile(r"([0-9]+)")
_WHITESPACE: Final = re.compile(r"\s")
_EPOCH: Final = re.compile(r"[0-9]+")
_UPSTREAM_CHARS: Final = re.compile(r"[A-Za-z0-9.+~:-]+")
_REVISION_CHARS: Final = re.compile(r"[A-Za-z0-9.+~]+")


def _invalid(text: str, rule: str) -> InvalidVersion:
    return InvalidVersion("deb", text, rule, SYNTAX)


def split(text: str) -> tuple[int, str, str]:
    """``(epoch, upstream, revision)`` of a version; ``revision`` is ``""`` if absent.

    Refuses what dpkg refuses, plus characters dpkg only warns about (no package
    can be built with them, and they are a sign of garbage input).
    """
    if not text:
        raise _invalid(text, "version must not be empty")
    if _WHITESPACE.search(text):
        raise _invalid(text, "version must not contain whitespace")
    epoch = 0
    rest = text
    colon = text.find(":")
    if colon >= 0:
        epoch_text = text[:colon]
        if not epoch_text:
            raise _invalid(text, "epoch before ':' is empty")
        if not _EPOCH.fullmatch(epoch_text):
            raise _invalid(text, "epoch must be a number")
        epoch = int(epoch_text)
        if epoch > EPOCH_MAX:
            raise _invalid(text, f"epoch must be at most {EPOCH_MAX}")
        rest = text[colon + 1 :]
        if not rest:
            raise _invalid(text, "nothing after the epoch's ':'")
    upstream, hyphen, revision = rest.rpartition("-")
    if not hyphen:
        upstream, revision = rest, ""
    elif not revision:
        raise _invalid(text, "revision after the last '-' is empty")
    if not upstream:
        raise _invalid(text, "upstream version is empty")
    if not _UPSTREAM_CHARS.fullmatch(upstream):
        raise _invalid(text, "upstream version may only contain A-Z a-z 0-9 . + ~ - :")
    if revision and not _REVISION_CHARS.fullmatch(revision):
        raise _invalid(text, "revision may only contain A-Z a-z 0-9 . + ~")
    return epoch, upstream, revision


def _part_key(part: str) -> list[object]:
    pieces = _DIGIT_RUNS.split(part)  # [run, digits, run, digits, ..., run]
    key: list[object] = []
    for i in range(0, len(pieces) - 1, 2):
        key.append(pieces[i].translate(_ORDER) + _END)
        key.append(int(pieces[i + 1]))
    if pieces[-1]:
        key.append(pieces[-1].translate(_ORDER) + _END)
        key.append(0)
    if not key:  # "" (no revision) must equal "0"
        key = [_END, 0]
    key.append(_END)
    return key


class DebScheme:
    """dpkg ordering of ``[epoch:]upstream[-revision]``."""

    name: Final = "deb"

    def parse(self, text: str) -> VersionKey:
        epoch, upstream, revision = split(text)
        # Flat is safe: every part ends with END at a run position, where the
        # other key holds either END too or a longer run, so keys never misalign.
        return (epoch, *_part_key(upstream), *_part_key(revision))

    def compare(self, a: str, b: str) -> int:
        return cmp_keys(self.parse(a), self.parse(b))

    def validate(self, text: str) -> None:
        _, upstream, _ = split(text)
        if not upstream[0].isdigit():
            # dpkg only warns here and still compares; dpkg-deb refuses to build it.
            raise _invalid(text, "upstream version must start with a digit")


DEB: Final = DebScheme()
