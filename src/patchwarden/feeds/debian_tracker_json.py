"""The Debian security tracker's JSON export
(https://security-tracker.debian.org/tracker/data/json)::

    {"<source package>": {"CVE-2023-1234": {
        "description": "…", "scope": "remote", "debianbug": 1234,
        "releases": {"bookworm": {"status": "resolved", "fixed_version": "1.2-3",
                                  "urgency": "medium", "repositories": {…}}}}}}

One :class:`Advisory` per (package, vulnerability), with the stable id
``DEBIAN-<vulnerability id>-<package>`` (e.g. ``DEBIAN-CVE-2023-1234-openssl``;
it cannot clash with OSV's per-CVE ``DEBIAN-CVE-2023-1234`` records), source
"debian-tracker-json", the vulnerability id as alias and the description as
title. Per release (``debian:<number>`` from ``DEBIAN_CODENAMES``):

* ``resolved`` with ``fixed_version`` "0": not affected, no entry;
* ``resolved`` with a version: fixed there (introduced "0", fixed V);
* ``open``: every version (``all_versions``), the urgency in the note
  ("end-of-life" when the tracker says so);
* ``undetermined``: every version, note "undetermined".

``sid`` and ``experimental`` have no release number and are skipped (counted
in the notes); another unknown codename or status rejects that release only.
A pair whose releases are all unaffected is still imported (with no affected
entries), so a re-import clears what an earlier one said. The file is walked
package by package, never loaded whole.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from patchwarden.domain.advisories import (
    DEBIAN_CODENAMES,
    Advisory,
    AffectedPackage,
    AffectedRange,
    ParsedFeed,
    RangeEvent,
)
from patchwarden.feeds.base import (
    MAX_ID_LENGTH,
    Collector,
    FeedSource,
    FileRejected,
    text_or_none,
    version_error,
)
from patchwarden.prioritize.severity import SeverityLevel, most_severe, normalise_severity

NAME: Final = "debian-tracker-json"
UNNUMBERED: Final = frozenset({"sid", "experimental"})
_VULN_ID: Final = re.compile(r"(?:CVE-\d{4}-\d{4,}|TEMP-\d+-[0-9A-Fa-f]+|[A-Z][A-Z0-9]*-[\w.-]+)")
_DETECT: Final = re.compile(rb'\A(?:\xef\xbb\xbf)?\s*\{\s*"[^"]+"\s*:\s*\{\s*"(?:CVE|TEMP)-')
_QUIET_URGENCIES: Final = frozenset({"", "not yet assigned"})


def advisory_id(vulnerability: str, package: str) -> str:
    return f"DEBIAN-{vulnerability}-{package}"


class DebianTrackerJsonFeed:
    name: Final = NAME

    def detect(self, head: bytes, filename: str) -> bool:
        return bool(_DETECT.match(head))

    def parse(self, source: FeedSource) -> ParsedFeed:
        c = Collector(NAME, source)
        with c.whole_file(), c.json_document() as reader:
            if reader.first_char() != "{":
                raise FileRejected("not a Debian tracker JSON export: expected a JSON object")
            packages = with_releases = 0
            for package, _, vulnerabilities in reader.members():
                packages += 1
                if not isinstance(vulnerabilities, dict):
                    c.reject(
                        c.at(package), "a package's value must be an object of vulnerabilities"
                    )
                    continue
                for vulnerability, raw in vulnerabilities.items():
                    with_releases += isinstance(raw, dict) and "releases" in raw
                    _pair(c, package, vulnerability, raw)
            reader.end()
            if packages and not with_releases:
                raise FileRejected(
                    "not a Debian tracker JSON export: no entry has 'releases' "
                    "(expected {package: {CVE: {releases: …}}})"
                )
            c.note(f"Debian tracker JSON: {packages} source packages")
        return c.result()


def _pair(c: Collector, package: str, vulnerability: str, raw: object) -> None:
    where = c.at(package, vulnerability)
    if not _VULN_ID.fullmatch(vulnerability):
        c.reject(where, f"{vulnerability[:40]!r} is not a vulnerability id")
        return
    identifier = advisory_id(vulnerability, package)
    if len(identifier) > MAX_ID_LENGTH:
        c.reject(where, f"advisory id longer than {MAX_ID_LENGTH} characters")
        return
    if not isinstance(raw, dict) or not isinstance(raw.get("releases", {}), dict):
        c.reject(where, "expected an object with a 'releases' object")
        return
    affected: list[AffectedPackage] = []
    accepted: list[object] = []  # the states of the releases read, for the rating
    for release, state in raw.get("releases", {}).items():
        try:
            entry = _release(package, release, state)
        except ValueError as exc:
            c.reject_part(identifier, f"{where} releases.{release}", str(exc))
            continue
        accepted.append(state)
        if isinstance(entry, AffectedPackage):
            affected.append(entry)
        elif entry == "unnumbered":
            c.tally("{n} release entries for sid/experimental skipped (no release number)")
        else:
            c.tally("{n} release entries are resolved with version 0 (not affected)")
    if not affected:
        c.tally("{n} (package, vulnerability) pairs affect no numbered release (imported empty)")
    c.add(
        Advisory(
            id=identifier,
            source=NAME,
            aliases=(vulnerability,),
            title=text_or_none(raw.get("description")),
            affected=tuple(sorted(affected, key=lambda a: a.platform)),
            rating=_rating(accepted),
        )
    )


def _rating(states: Iterable[object]) -> SeverityLevel | None:
    """The most severe urgency the tracker gives the flaw in any release ("low",
    "medium", "high", "unimportant"; "not yet assigned" is none)."""
    levels = (
        normalise_severity(state.get("urgency", "").removesuffix("**").strip())
        for state in states
        if isinstance(state, dict) and isinstance(state.get("urgency"), str)
    )
    return most_severe(level for level in levels if level is not None)


def _release(package: str, release: str, state: object) -> AffectedPackage | str:
    if release in UNNUMBERED:
        return "unnumbered"
    number = DEBIAN_CODENAMES.get(release)
    if number is None:
        raise ValueError(f"unknown Debian release {release!r}")
    if not isinstance(state, dict):
        raise ValueError("expected an object with 'status'")
    platform = f"debian:{number}"
    status = state.get("status")
    urgency = state.get("urgency")
    urgency = urgency.strip() if isinstance(urgency, str) else ""
    if status == "resolved":
        fixed = state.get("fixed_version")
        if not isinstance(fixed, str) or not fixed.strip():
            raise ValueError("status 'resolved' without a fixed_version")
        fixed = fixed.strip()
        if fixed == "0":
            return "not-affected"
        error = version_error("deb", fixed)
        if error:
            raise ValueError(f"fixed_version {fixed!r} is not a valid deb version: {error}")
        events = (RangeEvent("introduced", "0"), RangeEvent("fixed", fixed))
        return AffectedPackage(platform, package, ranges=(AffectedRange("ECOSYSTEM", events),))
    if status == "open":
        if "end-of-life" in urgency:
            note: str | None = "end-of-life"
        else:
            note = None if urgency in _QUIET_URGENCIES else f"urgency {urgency}"
        return AffectedPackage(platform, package, all_versions=True, note=note)
    if status == "undetermined":
        return AffectedPackage(platform, package, all_versions=True, note="undetermined")
    raise ValueError(f"unknown status {status!r} (expected resolved, open or undetermined)")


FEED: Final = DebianTrackerJsonFeed()
