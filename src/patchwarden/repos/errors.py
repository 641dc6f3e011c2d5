"""The kinds of :class:`~patchwarden.errors.RepositoryError`, so a caller can
tell "try again later" (unreachable, a mirror caught mid-sync) from "this
repository serves something broken"."""

from __future__ import annotations

from patchwarden.errors import RepositoryError


class RepositoryUnreachable(RepositoryError):
    """The repository's host cannot be reached, or the connection broke."""

    code = "repository_unreachable"


class RepositoryChecksumMismatch(RepositoryError):
    """A file's size or digest differs from what the repository's index announces
    (often a mirror caught mid-sync: retry later)."""

    code = "repository_checksum_mismatch"


class RepositoryFormatError(RepositoryError):
    """Metadata that cannot be read: corrupt or truncated compression, XML that is
    not well formed or refused, a required field missing."""

    code = "repository_format_error"


class RepositoryHTTPError(RepositoryError):
    """The repository's server answered with an HTTP error status."""

    code = "repository_http_error"

    def __init__(self, message: str, status_code: int) -> None:
        self.status_code = status_code
        super().__init__(message)
