"""Inventory values: what is installed on an asset, and how two inventories differ."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

# (ecosystem, name, arch, version): one installed package on an asset. Several
# versions of one name may coexist (rpm kernels), so the version is part of it.
PackageKey = tuple[str, str, str, str]


class InstalledPackage(NamedTuple):
    """One installed package. A NamedTuple rather than a frozen dataclass: it is
    just as immutable and typed, and builds several times faster, which counts
    when every report carries thousands of them."""

    ecosystem: str
    name: str
    version: str
    arch: str = ""
    source_name: str | None = None
    source_version: str | None = None
    status: str = "installed"

    @property
    def key(self) -> PackageKey:
        return (self.ecosystem, self.name, self.arch, self.version)


@dataclass(frozen=True, slots=True)
class PackageChange:
    """One event: installed (old None), removed (new None) or changed (both set)."""

    action: str
    ecosystem: str
    name: str
    arch: str
    old_version: str | None
    new_version: str | None


@dataclass(frozen=True)
class Facts:
    """What the collectors found about the machine itself (all optional)."""

    hostname: str | None = None
    fqdn: str | None = None
    machine_id: str | None = None
    os_id: str | None = None
    os_version_id: str | None = None
    os_name: str | None = None
    os_pretty_name: str | None = None
    os_codename: str | None = None
    os_release: str | None = None
    kernel: str | None = None
    arch: str | None = None
    boot_time: datetime | None = None
    reboot_required: bool | None = None
    ip_addresses: tuple[str, ...] | None = None
    virtualization: str | None = None
    cloud_provider: str | None = None
    firmware: dict[str, object] | None = None


@dataclass(frozen=True)
class AgentReport:
    """A validated report from an agent (see patchwarden.protocol.v1)."""

    asset_id: int
    seq: int
    kind: str  # full | delta
    base_seq: int | None
    agent_version: str
    facts: Facts
    collector_notes: list[dict[str, str]] | None = None  # None: unchanged
    packages: Sequence[InstalledPackage] = ()
    added: Sequence[InstalledPackage] = ()
    removed: Sequence[InstalledPackage] = ()


def describe_changes(
    removed: list[InstalledPackage], added: list[InstalledPackage]
) -> list[PackageChange]:
    """Turn removed/added rows into events people read: a package whose only
    version was replaced by one other version is 'changed' (upgrade or
    downgrade), everything else is installed or removed. A row re-added with the
    same version (a status change) is not an event."""
    by_name_removed: dict[tuple[str, str, str], list[InstalledPackage]] = defaultdict(list)
    by_name_added: dict[tuple[str, str, str], list[InstalledPackage]] = defaultdict(list)
    for package in removed:
        by_name_removed[(package.ecosystem, package.name, package.arch)].append(package)
    for package in added:
        by_name_added[(package.ecosystem, package.name, package.arch)].append(package)
    changes: list[PackageChange] = []
    for ident in sorted(by_name_removed.keys() | by_name_added.keys()):
        gone = by_name_removed.get(ident, [])
        new = by_name_added.get(ident, [])
        same_versions = {p.version for p in gone} & {p.version for p in new}
        gone = [p for p in gone if p.version not in same_versions]
        new = [p for p in new if p.version not in same_versions]
        eco, name, arch = ident
        if len(gone) == 1 and len(new) == 1:
            changes.append(
                PackageChange("changed", eco, name, arch, gone[0].version, new[0].version)
            )
            continue
        changes.extend(PackageChange("removed", eco, name, arch, p.version, None) for p in gone)
        changes.extend(PackageChange("installed", eco, name, arch, None, p.version) for p in new)
    return changes
