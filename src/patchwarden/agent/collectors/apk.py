"""Alpine packages, read from apk's installed database."""

from __future__ import annotations

from typing import Dict, List

from patchwarden.agent.collectors.base import CollectorOutput, ok, package, skipped
from patchwarden.agent.host import Host
from patchwarden.protocol.v1 import PackageDict

INSTALLED_PATH = "/lib/apk/db/installed"


def _package(fields: Dict[str, str]) -> PackageDict:
    # `o:` is the origin (source) package; it shares the version.
    return package(
        "apk",
        fields["P"],
        fields["V"],
        fields.get("A"),
        fields.get("o") or fields["P"],
        fields["V"],
    )


def parse_installed(text: str) -> List[PackageDict]:
    """Packages from lib/apk/db/installed: blank-line separated records of
    one-letter `X:value` lines (P name, V version, A arch, o origin)."""
    packages: List[PackageDict] = []
    fields: Dict[str, str] = {}
    for line in [*text.split("\n"), ""]:  # the trailing "" ends the last record
        if not line.strip():
            if fields.get("P") and fields.get("V"):
                packages.append(_package(fields))
            fields = {}
            continue
        key, sep, value = line.partition(":")
        # Keep the first occurrence: only the package-level keys we read are unique.
        if sep and len(key) == 1 and key not in fields:
            fields[key] = value.strip()
    return packages


def collect(host: Host) -> CollectorOutput:
    text = host.read_text(INSTALLED_PATH)
    if text is None:
        return skipped("no apk database (%s absent)" % INSTALLED_PATH)
    return ok(packages=parse_installed(text))
