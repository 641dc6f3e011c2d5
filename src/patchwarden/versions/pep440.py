"""Python package versions (PEP 440), parsed by ``packaging``.

``packaging`` is the reference implementation (pip uses it), so parsing and
normalisation are delegated to it. The key is rebuilt from its public fields as
a plain tuple, with the same layout as ``packaging``'s own comparison key, so
ordering does not depend on a private attribute.
"""

from __future__ import annotations

from typing import Final

from packaging.version import InvalidVersion as PackagingInvalidVersion
from packaging.version import Version

from patchwarden.versions.base import InvalidVersion, VersionKey, cmp_keys

SYNTAX: Final = "PEP 440: [N!]N(.N)*[{a|b|rc}N][.postN][.devN][+local]"

_PRE_RANK: Final = {"a": 0, "b": 1, "rc": 2}
_DEV_ONLY: Final = -1  # 1.0.dev1 sorts before 1.0a1
_NO_PRE: Final = 3  # 1.0 sorts after 1.0rc1
_LOCAL_STR: Final = -1  # in local labels strings sort before numbers


def parse_version(text: str) -> Version:
    """The ``packaging`` Version of ``text``; raises :class:`InvalidVersion`."""
    try:
        return Version(text)
    except PackagingInvalidVersion as exc:
        raise InvalidVersion("pep440", text, "not a valid PEP 440 version", SYNTAX) from exc


def normalize(text: str) -> str:
    """The canonical PEP 440 spelling, e.g. ``1.0-alpha1`` -> ``1.0a1``."""
    return str(parse_version(text))


def key_of(version: Version) -> VersionKey:
    """``(epoch, release, suffix[, local])`` ordered as PEP 440 orders versions."""
    release = version.release
    end = len(release)
    while end and release[end - 1] == 0:  # 1.0.0 == 1
        end -= 1
    pre, post, dev = version.pre, version.post, version.dev
    if pre is None and post is None and dev is not None:
        pre_rank, pre_n = _DEV_ONLY, 0
    elif pre is None:
        pre_rank, pre_n = _NO_PRE, 0
    else:
        pre_rank, pre_n = _PRE_RANK[pre[0]], pre[1]
    suffix = (
        pre_rank,
        pre_n,
        0 if post is None else 1,
        0 if post is None else post,
        1 if dev is None else 0,
        0 if dev is None else dev,
    )
    if version.local is None:
        return (version.epoch, release[:end], suffix)
    local = tuple(
        (int(part), "") if part.isdigit() else (_LOCAL_STR, part)
        for part in version.local.split(".")
    )
    return (version.epoch, release[:end], suffix, local)


class Pep440Scheme:
    """PEP 440 ordering, as pip and ``packaging`` order versions."""

    name: Final = "pep440"

    def parse(self, text: str) -> VersionKey:
        return key_of(parse_version(text))

    def compare(self, a: str, b: str) -> int:
        return cmp_keys(self.parse(a), self.parse(b))

    def validate(self, text: str) -> None:
        parse_version(text)


PEP440: Final = Pep440Scheme()
