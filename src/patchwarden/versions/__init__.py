"""Version schemes: one module per scheme, found through the ``SCHEMES`` registry.

>>> compare("deb", "1.0~rc1-1", "1.0-1")
-1
>>> sorted(["1.10", "1.9"], key=lambda v: sort_key("rpm", v))
['1.9', '1.10']
"""

from patchwarden.versions.base import (
    InvalidVersion,
    UnknownVersionScheme,
    VersionKey,
    VersionScheme,
    cmp_keys,
)
from patchwarden.versions.registry import SCHEMES, compare, get_scheme, sort_key

__all__ = [
    "SCHEMES",
    "InvalidVersion",
    "UnknownVersionScheme",
    "VersionKey",
    "VersionScheme",
    "cmp_keys",
    "compare",
    "get_scheme",
    "sort_key",
]
