"""What every collector returns, and small helpers they share."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

from patchwarden.agent.host import CommandNotFound, CommandResult, Host
from patchwarden.protocol.v1 import PackageDict

Facts = Dict[str, Any]


@dataclass(frozen=True)
class CollectorOutput:
    """One collector's findings: a fragment of the facts, maybe packages, and
    whether it ran ("ok"), had nothing to look at ("skipped") or failed ("error").
    """

    status: str
    message: str = ""
    facts: Facts = field(default_factory=dict)
    packages: Optional[List[PackageDict]] = None


Collector = Callable[[Host], CollectorOutput]


def ok(
    facts: Optional[Facts] = None,
    packages: Optional[List[PackageDict]] = None,
    message: str = "",
) -> CollectorOutput:
    return CollectorOutput("ok", message, dict(facts or {}), packages)


def skipped(message: str) -> CollectorOutput:
    return CollectorOutput("skipped", message)


def failed(message: str) -> CollectorOutput:
    return CollectorOutput("error", message)


def package(
    ecosystem: str,
    name: str,
    version: str,
    arch: Optional[str],
    source_name: Optional[str],
    source_version: Optional[str],
    status: str = "installed",
) -> PackageDict:
    """One package entry. An unknown arch is left out rather than sent as
    null: the protocol treats a missing arch as "none", and null is refused."""
    entry: PackageDict = {"ecosystem": ecosystem, "name": name, "version": version}
    if arch:
        entry["arch"] = arch
    entry.update(source_name=source_name, source_version=source_version, status=status)
    return entry


def try_run(host: Host, argv: Sequence[str], timeout: float = 30.0) -> Optional[CommandResult]:
    """Run an optional command: None when it is missing, cannot start or hangs.

    For lookups whose failure only means "unknown" (fqdn, dmidecode, ...).
    """
    try:
        return host.run(argv, timeout=timeout)
    except (CommandNotFound, OSError, subprocess.TimeoutExpired):
        return None


def first_line(text: Optional[str]) -> Optional[str]:
    """The first non-empty stripped line of `text`, or None."""
    if text is None:
        return None
    for line in text.splitlines():
        line = line.strip()
        if line:
            return line
    return None


def parse_stanzas(text: str) -> List[Dict[str, str]]:
    """Split a deb822-style file (dpkg status) into field dicts.

    Stanzas are separated by blank lines; a line starting with a space or tab
    continues the previous field (we keep only the first line of such fields,
    which is all we need).
    """
    stanzas: List[Dict[str, str]] = []
    current: Dict[str, str] = {}
    # split("\n"), not splitlines(): descriptions may hold form feeds and such.
    for line in text.split("\n"):
        if not line.strip():
            if current:
                stanzas.append(current)
                current = {}
            continue
        if line[0] in " \t":
            continue
        name, sep, value = line.partition(":")
        if sep:
            current[name.strip()] = value.strip()
    if current:
        stanzas.append(current)
    return stanzas
