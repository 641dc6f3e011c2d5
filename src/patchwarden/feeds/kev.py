"""CISA's Known Exploited Vulnerabilities catalogue (JSON).

``{"title", "catalogVersion", "dateReleased", "count", "vulnerabilities": [{"cveID",
"vendorProject", "product", "vulnerabilityName", "dateAdded", "shortDescription",
"requiredAction", "dueDate", "knownRansomwareCampaignUse", "notes", "cwes"}]}``

``knownRansomwareCampaignUse`` is "Known" or "Unknown"; anything else rejects
the entry. A catalogue whose ``count`` disagrees with its entries gets a note.

The catalogue is complete: a CVE it no longer lists is no longer known to be
exploited. :class:`KevCatalogue` says which CVEs a catalogue lists, when it can
be trusted to be whole, so the importer can un-list the others, and when it was
released (``dateReleased``), so that an older catalogue imported after a newer one
neither un-lists nor rolls back what the newer one lists.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Final

from patchwarden.domain.advisories import KevEntry, ParsedFeed
from patchwarden.feeds.base import (
    CVE_RE,
    Collector,
    FeedSource,
    FileRejected,
    parse_date,
    parse_datetime,
    text_or_none,
)

NAME: Final = "kev"
_RANSOMWARE: Final = {"Known": True, "Unknown": False}
_REQUIRED: Final = ("vendorProject", "product", "vulnerabilityName")


@dataclass(frozen=True)
class KevCatalogue(ParsedFeed):
    """A parsed catalogue and every CVE it lists (entries rejected alone included).

    ``listed`` is None when the catalogue cannot be trusted to be complete (it
    was rejected whole, is empty, disagrees with its ``count`` or has an entry
    without a ``cveID``): then no entry may be un-listed because of it.
    """

    listed: frozenset[str] | None = None
    released: datetime | None = None  # dateReleased; None when absent or unreadable
    version: str = ""  # catalogVersion, as given


class KevFeed:
    name: Final = NAME

    def detect(self, head: bytes, filename: str) -> bool:
        return head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{") and (
            b'"catalogVersion"' in head or b"Known Exploited Vulnerabilities" in head
        )

    def parse(self, source: FeedSource) -> KevCatalogue:
        c = Collector(NAME, source)
        complete: frozenset[str] | None = None  # stays None if the file is rejected whole
        released: datetime | None = None
        version = ""
        with c.whole_file(), c.json_document() as reader:
            if reader.first_char() != "{":
                raise FileRejected("not a KEV catalogue: expected a JSON object")
            header: dict[str, object] = {}
            entries = with_cve = unidentified = 0
            listed: set[str] = set()
            for index, value in reader.items_of("vulnerabilities", header):
                entries += 1
                with_cve += isinstance(value, dict) and "cveID" in value
                cve = value.get("cveID") if isinstance(value, dict) else None
                if isinstance(cve, str):
                    listed.add(cve.strip())  # a rejected entry is still listed upstream
                else:
                    unidentified += 1
                where = c.at(f"vulnerabilities[{index}]")
                try:
                    c.add(_entry(value))
                except ValueError as exc:
                    c.reject(f"{where} {cve}" if isinstance(cve, str) else where, str(exc))
            reader.end()
            if not isinstance(header.get("vulnerabilities"), list):
                keys = ", ".join(list(header)[:6])
                raise FileRejected(f"not a KEV catalogue: no 'vulnerabilities' list (keys: {keys})")
            if entries and not with_cve:
                raise FileRejected("not a KEV catalogue: no entry has a 'cveID'")
            version = str(header.get("catalogVersion") or "")
            c.note(
                f"CISA KEV catalogue {header.get('catalogVersion')}, released "
                f"{header.get('dateReleased')}: {entries} entries"
            )
            released = _released(header.get("dateReleased"), c)
            count = header.get("count")
            incomplete = _why_incomplete(entries, unidentified, count)
            if incomplete:
                c.note(f"entries missing from this catalogue stay listed: {incomplete}")
            else:
                complete = frozenset(listed)
            if isinstance(count, int) and count != entries:
                c.note(f"the catalogue says it has {count} entries but lists {entries}")
        result = c.result()
        return KevCatalogue(
            source=result.source,
            records=tuple(
                replace(r, catalogue_released=released) if isinstance(r, KevEntry) else r
                for r in result.records
            ),
            file=result.file,
            rejected=result.rejected,
            notes=result.notes,
            listed=complete,
            released=released,
            version=version,
        )


def _released(value: object, c: Collector) -> datetime | None:
    """The catalogue's release time. Without one it is undated: it un-lists and
    replaces only entries that are undated too (its place in time is unknown)."""
    try:
        released = parse_datetime(value, "dateReleased")
    except ValueError as exc:
        c.note(f"{exc}: the catalogue is taken as undated")
        return None
    if released is None:
        c.note("the catalogue has no dateReleased: it is taken as undated")
    return released


def _why_incomplete(entries: int, unidentified: int, count: object) -> str | None:
    """Why a catalogue cannot be trusted to list every KEV entry, or None.

    Un-listing on the word of a partial catalogue would drop entries that are
    still exploited, so anything short of a whole, self-consistent one is refused.
    """
    if not entries:
        return "it lists no entry"
    if not isinstance(count, int) or isinstance(count, bool):
        return "it gives no 'count' to check its entries against"
    if count != entries:
        return f"its count ({count}) disagrees with its {entries} entries"
    if unidentified:
        return f"{unidentified} of its entries have no 'cveID' to tell which CVE they list"
    return None


def _entry(raw: object) -> KevEntry:
    if not isinstance(raw, dict):
        raise ValueError("an entry must be a JSON object")
    cve = raw.get("cveID")
    if not isinstance(cve, str) or not CVE_RE.fullmatch(cve.strip()):
        raise ValueError(f"cveID {cve!r} is not a CVE id (CVE-YYYY-NNNN)")
    for key in _REQUIRED:
        if text_or_none(raw.get(key)) is None:
            raise ValueError(f"'{key}' is missing or empty")
    ransomware = raw.get("knownRansomwareCampaignUse", "Unknown")
    if ransomware not in _RANSOMWARE:
        raise ValueError(
            f"knownRansomwareCampaignUse {ransomware!r} is neither 'Known' nor 'Unknown'"
        )
    due = raw.get("dueDate")
    return KevEntry(
        cve_id=cve.strip(),
        vendor=str(raw["vendorProject"]).strip(),
        product=str(raw["product"]).strip(),
        name=str(raw["vulnerabilityName"]).strip(),
        date_added=parse_date(raw.get("dateAdded"), "dateAdded"),
        due_date=parse_date(due, "dueDate") if due not in (None, "") else None,
        known_ransomware=_RANSOMWARE[str(ransomware)],
        required_action=text_or_none(raw.get("requiredAction")) or "",
        notes=text_or_none(raw.get("notes")) or "",
    )


FEED: Final = KevFeed()
