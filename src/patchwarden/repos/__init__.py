"""Repository metadata: what apt, rpm-md and apk repositories offer, and the
updates that makes available to an inventory.

Pure parsers (``apt``, ``rpmmd``, ``apk``) turn metadata bytes into
:class:`RepoPackage` / :class:`UpdateNotice` values; ``fetch`` downloads and
verifies a repository, all or nothing; ``updates`` computes what
``apt list --upgradable`` / ``dnf check-update`` would list.
"""

from patchwarden.repos.apk import ApkIndex, parse_apkindex, parse_apkindex_text
from patchwarden.repos.apt import (
    IndexFile,
    Release,
    classify_pocket,
    parse_packages,
    parse_release,
    split_clearsigned,
)
from patchwarden.repos.errors import (
    RepositoryChecksumMismatch,
    RepositoryFormatError,
    RepositoryHTTPError,
    RepositoryUnreachable,
)
from patchwarden.repos.fetch import (
    Fetched,
    FetchResult,
    Unchanged,
    Validators,
    fetch_apk,
    fetch_apt,
    fetch_rpm,
)
from patchwarden.repos.model import (
    Classification,
    NoticePackage,
    NoticeType,
    RepoKind,
    RepoPackage,
    RepoSnapshot,
    UpdateNotice,
)
from patchwarden.repos.rpmmd import (
    Repomd,
    RepomdData,
    parse_issued,
    parse_primary,
    parse_repomd,
    parse_updateinfo,
)
from patchwarden.repos.updates import (
    AvailableUpdate,
    SkippedCandidate,
    UpdateIndex,
    available_updates,
)

__all__ = [
    "ApkIndex",
    "AvailableUpdate",
    "Classification",
    "FetchResult",
    "Fetched",
    "IndexFile",
    "NoticePackage",
    "NoticeType",
    "Release",
    "RepoKind",
    "RepoPackage",
    "RepoSnapshot",
    "Repomd",
    "RepomdData",
    "RepositoryChecksumMismatch",
    "RepositoryFormatError",
    "RepositoryHTTPError",
    "RepositoryUnreachable",
    "SkippedCandidate",
    "Unchanged",
    "UpdateIndex",
    "UpdateNotice",
    "Validators",
    "available_updates",
    "classify_pocket",
    "fetch_apk",
    "fetch_apt",
    "fetch_rpm",
    "parse_apkindex",
    "parse_apkindex_text",
    "parse_issued",
    "parse_packages",
    "parse_primary",
    "parse_release",
    "parse_repomd",
    "parse_updateinfo",
    "split_clearsigned",
]
