"""The explicit registry of version schemes, keyed by the name used in
configuration, storage and the API."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from patchwarden.versions.apk import APK
from patchwarden.versions.base import UnknownVersionScheme, VersionKey, VersionScheme
from patchwarden.versions.deb import DEB
from patchwarden.versions.generic import GENERIC
from patchwarden.versions.pep440 import PEP440
from patchwarden.versions.rpm import RPM
from patchwarden.versions.semver import SEMVER

SCHEMES: Final[Mapping[str, VersionScheme]] = MappingProxyType(
    {scheme.name: scheme for scheme in (DEB, RPM, APK, PEP440, SEMVER, GENERIC)}
)


def get_scheme(name: str) -> VersionScheme:
    """The scheme called ``name``; raises :class:`UnknownVersionScheme` listing the valid ones."""
    scheme = SCHEMES.get(name)
    if scheme is None:
        raise UnknownVersionScheme(name, tuple(sorted(SCHEMES)))
    return scheme


def compare(scheme: str, a: str, b: str) -> int:
    """-1, 0 or 1 as version ``a`` is older than, equal to or newer than ``b``."""
    return get_scheme(scheme).compare(a, b)


def sort_key(scheme: str, text: str) -> VersionKey:
    """The sort key of ``text`` under ``scheme`` (parse once, compare many times)."""
    return get_scheme(scheme).parse(text)
