"""Debian packages, read straight from dpkg's status database.

Reading the files (rather than running dpkg-query) is fast and works for
sandbox and image roots that have no dpkg binary of their own. Like dpkg, we
read the status file and then its journal (updates/NNNN), which holds the
newer records of packages changed since the last checkpoint: during or after
an interrupted dpkg run the status file alone is out of date.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

from patchwarden.agent.collectors.base import CollectorOutput, ok, package, parse_stanzas, skipped
from patchwarden.agent.host import Host
from patchwarden.protocol.v1 import PACKAGE_STATUSES, PackageDict

STATUS_PATH = "/var/lib/dpkg/status"
UPDATES_DIR = "/var/lib/dpkg/updates"


def parse_status(text: str, *journal: str) -> List[PackageDict]:
    """Packages present on disk (installed or part-way through dpkg), not
    those merely remembered for their config files or selected for install.

    `journal` holds the texts of the updates/ files, oldest first; each record
    there replaces the package's record in the status file.
    """
    records: Dict[Tuple[str, str], Dict[str, str]] = {}
    arches: Dict[str, List[str]] = {}  # package name -> its instances' arches
    for chunk in (text, *journal):
        for stanza in parse_stanzas(chunk):
            package_name = stanza.get("Package", "")
            arch = stanza.get("Architecture", "")
            known = arches.setdefault(package_name, [])
            if not arch and len(known) == 1:
                # A purged package's record has no arch; like dpkg, match it
                # to the package's only instance.
                arch = known[0]
            if arch not in known:
                known.append(arch)
            records[(package_name, arch)] = stanza
    packages: List[PackageDict] = []
    for stanza in records.values():
        name = stanza.get("Package")
        version = stanza.get("Version")
        # "Status: <want> <error flag> <state>"
        words = stanza.get("Status", "").split()
        state = words[-1] if len(words) == 3 else ""
        if not name or not version or state not in PACKAGE_STATUSES:
            continue
        source_name: Optional[str] = name
        source_version: Optional[str] = version
        # "Source: src" or "Source: src (source-version)" when it differs (binNMUs).
        source = stanza.get("Source", "").strip()
        if source:
            source_name, _, rest = source.partition(" ")
            rest = rest.strip()
            if rest.startswith("(") and rest.endswith(")"):
                source_version = rest[1:-1].strip()
        packages.append(
            package(
                "deb",
                name,
                version,
                stanza.get("Architecture"),
                source_name,
                source_version,
                status=state,
            )
        )
    return packages


def collect(host: Host) -> CollectorOutput:
    text = host.read_text(STATUS_PATH)
    if text is None:
        return skipped("no dpkg database (%s absent)" % STATUS_PATH)
    journal: List[str] = []
    # dpkg names journal entries with digits only; anything else is not its.
    for name in sorted(n for n in host.list_dir(UPDATES_DIR) or () if n.isdigit()):
        entry = host.read_text("%s/%s" % (UPDATES_DIR, name))
        if entry:
            journal.append(entry)
    message = "applied %d pending dpkg journal entries" % len(journal) if journal else ""
    return ok(packages=parse_status(text, *journal), message=message)
