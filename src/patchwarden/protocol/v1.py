"""Protocol version 1: enrolment and inventory reports.

Enrolment:  POST /api/v1/agent/enroll  {"protocol": 1, "token": str, "hostname": str,
            "machine_id": str | null, "agent_version": str}
            -> 201 {"agent_id": int, "asset_id": int, "credential": str,
                    "report_interval": int}
Report:     POST /api/v1/agent/report  (Authorization: Bearer <credential>)
            {"protocol": 1, "asset_id": int, "seq": int, "kind": "full" | "delta",
             "base_seq": int | null, "agent_version": str, "collected_at": ISO-8601,
             "facts": {...}, "collector_notes": [...],
             "packages": [...]            (full only)
             "added": [...], "removed": [...]   (delta only)}
            -> 200 {"status": "accepted", "ack_seq": int, "asset_id": int,
                    "report_interval": int}
            -> 409 {"error": "full_report_required", ...} when the server's
               inventory is not the one the delta was computed against.

`seq` strictly increases with every report an agent sends (full or delta), so a
replayed report is refused. A delta is applied only if `base_seq` equals the
sequence number of the last report the server acknowledged.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Dict, Optional, Tuple

PROTOCOL_VERSION = 1

ECOSYSTEMS = ("deb", "rpm", "apk", "pypi", "npm", "windows", "firmware")
PACKAGE_STATUSES = (
    "installed",
    "half-installed",
    "unpacked",
    "half-configured",
    "triggers-awaited",
    "triggers-pending",
)
COLLECTOR_STATUSES = ("ok", "skipped", "error")

MAX_PACKAGES = 100_000
MAX_NAME_LENGTH = 255
MAX_VERSION_LENGTH = 255

# Conservative character sets: wide enough for every real package manager,
# narrow enough that no value can be mistaken for shell or path syntax.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+~@-]{0,254}$")
VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+~:^-]{0,254}$")
ARCH_RE = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")

# (ecosystem, name, arch, version): what makes one installed package unique on
# an asset. Several versions of one name may coexist (rpm kernels).
# typing aliases rather than `dict[str, str | None]`: these two lines are
# evaluated at import time, and the agent imports this module on Python 3.9.
PackageKey = Tuple[str, str, str, str]
PackageDict = Dict[str, Optional[str]]


def package_key(package: PackageDict) -> PackageKey:
    return (
        str(package["ecosystem"]),
        str(package["name"]),
        str(package.get("arch") or ""),
        str(package["version"]),
    )


def diff_packages(
    old: Iterable[PackageDict], new: Iterable[PackageDict]
) -> tuple[list[PackageDict], list[PackageDict]]:
    """Return (added, removed) between two package lists.

    A package whose any attribute changed counts as removed and added, so the
    receiver's state equals `new` after applying the delta.
    """
    old_by_key = {package_key(p): p for p in old}
    new_by_key = {package_key(p): p for p in new}
    added = [p for k, p in new_by_key.items() if old_by_key.get(k) != p]
    removed = [p for k, p in old_by_key.items() if new_by_key.get(k) != p]
    return added, removed


def validate_package(package: object) -> str | None:
    """Return why a package entry is invalid, or None when it is valid."""
    if not isinstance(package, dict):
        return "package entry must be an object"
    ecosystem = package.get("ecosystem")
    if ecosystem not in ECOSYSTEMS:
        return "ecosystem must be one of " + ", ".join(ECOSYSTEMS)
    for field, pattern in (("name", NAME_RE), ("version", VERSION_RE)):
        value = package.get(field)
        if not isinstance(value, str) or not pattern.fullmatch(value):
            return "%s %r does not match %s" % (field, value, pattern.pattern)
    arch = package.get("arch")
    if arch is not None and (not isinstance(arch, str) or not ARCH_RE.fullmatch(arch)):
        return "arch %r does not match %s" % (arch, ARCH_RE.pattern)
    return None
