"""Advisory-feed importers: one pure parser per source, an explicit registry,
and the download side (``patchwarden.feeds.sync``).

>>> sorted(FEEDS)
['alpine-secdb', 'debian-tracker', 'debian-tracker-json', 'epss', 'kev', 'nvd', 'osv']
"""

from patchwarden.feeds.base import MAX_DOCUMENT_BYTES, Feed, FeedSource
from patchwarden.feeds.errors import (
    ChecksumMismatch,
    DownloadInterrupted,
    FeedDownloadError,
    FeedUnreachable,
    UnknownFeed,
)
from patchwarden.feeds.registry import (
    FEEDS,
    UNKNOWN,
    detect,
    detect_format,
    get_feed,
    parse_source,
    read_path,
)

__all__ = [
    "FEEDS",
    "MAX_DOCUMENT_BYTES",
    "UNKNOWN",
    "ChecksumMismatch",
    "DownloadInterrupted",
    "Feed",
    "FeedDownloadError",
    "FeedSource",
    "FeedUnreachable",
    "UnknownFeed",
    "detect",
    "detect_format",
    "get_feed",
    "parse_source",
    "read_path",
]
