"""Package-manager back-ends: install exact versions, roll back, check.

One module per package manager behind the `PackageManager` interface
(base.py). `BACKENDS` is the registry, keyed by the name used in
configuration and job records; `backend()` builds one by name and
`detect()` picks the one a root's package database calls for.
"""

from __future__ import annotations

from typing import Dict, Mapping, Optional, Type

from patchwarden.agent.collectors import rpm as rpm_collector
from patchwarden.agent.host import LocalHost
from patchwarden.agent.pkgmgr.apk import INSTALLED_PATH as APK_INSTALLED
from patchwarden.agent.pkgmgr.apk import ApkManager
from patchwarden.agent.pkgmgr.apt import AptManager
from patchwarden.agent.pkgmgr.base import (
    Change,
    InvalidPackageSpec,
    PackageManager,
    PackageManagerError,
    Plan,
    Result,
    Target,
    ToolMissing,
    UnknownBackend,
)
from patchwarden.agent.pkgmgr.dnf import DnfManager
from patchwarden.agent.pkgmgr.zypper import ZypperManager

BACKENDS: Dict[str, Type[PackageManager]] = {
    "apt": AptManager,
    "dnf": DnfManager,
    "zypper": ZypperManager,
    "apk": ApkManager,
}


def backend(
    name: str, root: str = "/", *, env: Optional[Mapping[str, str]] = None
) -> PackageManager:
    """The back-end called `name`, acting on `root`."""
    try:
        cls = BACKENDS[name]
    except KeyError:
        raise UnknownBackend(
            "unknown package manager %r; valid: %s" % (name, ", ".join(sorted(BACKENDS)))
        ) from None
    return cls(root, env=env)


def detect(root: str = "/", *, env: Optional[Mapping[str, str]] = None) -> Optional[PackageManager]:
    """The back-end for what `root` has: a dpkg database -> apt; an rpm
    database -> dnf when the dnf command exists, else zypper when it does;
    an apk database -> apk. None when there is none of these (or no front-end
    for the rpm database)."""
    host = LocalHost(root)
    if host.read_text("/var/lib/dpkg/status") is not None:
        return AptManager(root, env=env)
    if rpm_collector.find_database(host) is not None:
        for cls in (DnfManager, ZypperManager):
            manager = cls(root, env=env)
            if manager.which(cls.name):
                return manager
        return None
    if host.read_text(APK_INSTALLED) is not None:
        return ApkManager(root, env=env)
    return None


__all__ = [
    "BACKENDS",
    "ApkManager",
    "AptManager",
    "Change",
    "DnfManager",
    "InvalidPackageSpec",
    "PackageManager",
    "PackageManagerError",
    "Plan",
    "Result",
    "Target",
    "ToolMissing",
    "UnknownBackend",
    "ZypperManager",
    "backend",
    "detect",
]
