"""Values of the repository layer: what a repository offers, and the notices
(errata) that say why.

Versions are kept as the package manager prints them, so they compare equal
as text with what the inventory collectors report:

* deb: ``[epoch:]upstream[-revision]`` exactly as in the Packages index;
* rpm: ``[epoch:]version-release``, the epoch shown only when it is not 0
  (rpm's ``%{EVR}``; primary.xml writes ``epoch="0"`` for "no epoch");
* apk: the ``V:`` field.

Ordering always goes through :mod:`patchwarden.versions`, never the text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal, NamedTuple

RepoKind = Literal["apt", "rpm", "apk"]
NoticeType = Literal["security", "bugfix", "enhancement"]
Classification = Literal["security", "bugfix", "enhancement", "unclassified"]

# The version scheme of each kind of repository (names in patchwarden.versions).
SCHEME_OF_KIND: Final[dict[RepoKind, str]] = {"apt": "deb", "rpm": "rpm", "apk": "apk"}

# Higher wins when several notices or repositories classify one update.
CLASSIFICATION_RANK: Final[dict[str, int]] = {
    "unclassified": 0,
    "enhancement": 1,
    "bugfix": 2,
    "security": 3,
}
SEVERITY_RANK: Final[dict[str, int]] = {
    "": 0,
    "low": 1,
    "moderate": 2,
    "important": 3,
    "critical": 4,
}


class RepoPackage(NamedTuple):
    """One binary package a repository offers. A NamedTuple, like
    ``InstalledPackage``: a Debian suite holds ~64,000 of them."""

    name: str
    version: str
    arch: str
    source: str = ""  # source package name, "" when unknown
    location: str = ""  # path relative to the repository base (Filename, location href)
    size: int = 0
    sha256: str = ""  # "" when the index gives no SHA-256 (apk, old rpm-md)
    build_time: datetime | None = None  # aware UTC; apt indexes carry none


class NoticePackage(NamedTuple):
    """A package version an update notice lists as the fix."""

    name: str
    version: str
    arch: str  # "" when the notice does not say


class UpdateNotice(NamedTuple):
    """An update notice (erratum, updateinfo ``<update>``): why a version exists."""

    id: str
    type: NoticeType
    severity: str  # "critical" | "important" | "moderate" | "low" | ""
    issued: datetime | None  # aware UTC
    title: str
    cve_ids: tuple[str, ...]
    packages: tuple[NoticePackage, ...]


@dataclass(frozen=True, eq=False)
class RepoSnapshot:
    """Everything one repository (an apt suite, an rpm-md repo, an apk index)
    offered at one moment.

    ``classification_default`` is what an update from here is when no notice
    says otherwise: an apt pocket's class (``-security`` → security …), or
    "unclassified". ``checksum`` identifies the metadata (``sha256:<hex>`` of
    the Release / repomd.xml / APKINDEX file), so an unchanged repository is
    recognised without reparsing. Compared by identity (``eq=False``): equal
    checksums are the cheap way to ask "same content?".
    """

    kind: RepoKind
    name: str
    packages: tuple[RepoPackage, ...]
    notices: tuple[UpdateNotice, ...] = ()
    classification_default: Classification = "unclassified"
    released: datetime | None = None
    checksum: str = ""
