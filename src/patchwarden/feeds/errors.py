"""Errors of the feed importers, in the project's one exception tree.

Bad *content* never raises: it becomes ``RejectedRecord`` values. These are for
bad requests (an unknown format name, a path that is not there) and for
downloads.
"""

from __future__ import annotations

from patchwarden.errors import InvalidInput, RemoteError


class UnknownFeed(InvalidInput):
    """A feed format name that is not in the registry."""

    code = "unknown_feed"

    def __init__(self, name: str, valid: tuple[str, ...]) -> None:
        self.name = name
        self.valid = valid
        super().__init__(f"unknown feed format {name!r}; valid formats: {', '.join(valid)}")


class FeedDownloadError(RemoteError):
    """A feed could not be downloaded (or what came was not right)."""

    code = "feed_download_failed"


class FeedUnreachable(FeedDownloadError):
    """The feed's host cannot be reached: DNS failure, refused connection, timeout."""

    code = "feed_unreachable"


class DownloadInterrupted(FeedUnreachable):
    """The connection broke during the download; what arrived is kept for resuming."""

    code = "feed_download_interrupted"


class ChecksumMismatch(FeedDownloadError):
    """The downloaded file does not match the checksum its publisher gives."""

    code = "feed_checksum_mismatch"
