"""The Debian security tracker's DSA and DLA lists (``data/DSA/list``,
``data/DLA/list``)::

    [29 Mar 2023] DSA-5380-1 xorg-server - security update
        {CVE-2023-1393}
        [bullseye] - xorg-server 2:1.20.11-1+deb11u6
        [buster] - foo <not-affected> (Vulnerable code not present)
        NOTE: fixed in testing at time of DSA

One :class:`Advisory` per header line (``id`` "DSA-5380-1", ``source``
"debian-tracker", the CVEs as aliases, the date as ``published``, the text
after the id as ``title``, ``NOTE:`` lines as ``details``). Each release line
gives an affected entry on ``debian:<number>`` (from ``DEBIAN_CODENAMES``):

* a version: fixed in that version (range introduced "0", fixed V);
* ``<unfixed>``: every version (``all_versions``);
* ``<end-of-life>``: every version, note "end-of-life" (no fix will come);
* ``<not-affected>``: no entry.

A release line with an unknown codename, a bad version or an unknown status is
rejected on its own; the advisory is kept. Text in parentheses becomes the
entry's note.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from patchwarden.domain.advisories import (
    DEBIAN_CODENAMES,
    Advisory,
    AffectedPackage,
    AffectedRange,
    ParsedFeed,
    RangeEvent,
)
from patchwarden.feeds.base import Collector, FeedSource, FileRejected, version_error

NAME: Final = "debian-tracker"
MONTHS: Final = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
_HEADER: Final = re.compile(
    r"\[(?P<day>\d{1,2}) (?P<month>[A-Z][a-z]{2}) (?P<year>\d{4})\]\s+"
    r"(?P<id>[A-Z]{2,5}-\d+(?:-\d+)?)(?:\s+(?P<rest>.*))?"
)
_DETECT: Final = re.compile(rb"\A(?:\xef\xbb\xbf)?\s*\[\d{1,2} [A-Z][a-z]{2} \d{4}\] [A-Z]{2,5}-\d")
_CVES: Final = re.compile(r"\{(?P<ids>[^}]*)\}")
_RELEASE: Final = re.compile(
    r"\[(?P<release>[\w.-]+)\]\s+-\s+(?P<package>\S+)\s+(?P<what><[^>]*>|\S+)\s*(?P<note>\(.*\))?"
)
_STATUSES: Final = ("<unfixed>", "<end-of-life>", "<not-affected>")


@dataclass
class _Draft:
    """An advisory being read: its header and the lines below it."""

    id: str
    line: int
    title: str | None
    published: datetime
    aliases: list[str] = field(default_factory=list)
    affected: list[AffectedPackage] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def advisory(self) -> Advisory:
        return Advisory(
            id=self.id,
            source=NAME,
            aliases=tuple(dict.fromkeys(self.aliases)),
            title=self.title,
            details="\n".join(self.notes) or None,
            published=self.published,
            affected=tuple(self.affected),
        )


class DebianTrackerFeed:
    name: Final = NAME

    def detect(self, head: bytes, filename: str) -> bool:
        return bool(_DETECT.match(head))

    def parse(self, source: FeedSource) -> ParsedFeed:
        c = Collector(NAME, source)
        with c.whole_file():
            _Parser(c).run()
        return c.result()


class _Parser:
    def __init__(self, collector: Collector) -> None:
        self.c = collector
        self.draft: _Draft | None = None
        self.skipping = False  # below a header that was rejected
        self.ids: dict[str, int] = {}
        self.headers = 0

    def run(self) -> None:
        c = self.c
        for number, raw in c.lines():
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                try:
                    line = raw.decode("latin-1")
                except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes anything
                    continue
                c.tally("{n} lines are not UTF-8 (read as Latin-1)")
            if not line.strip():
                continue
            if not line[0].isspace():
                self._header(line.strip(), number)
            elif self.draft is not None:
                self._body(line.strip(), number, self.draft)
            elif not self.skipping:
                c.reject(c.at_line(number), "an indented line before the first advisory header")
        self._finish()
        if not self.headers:
            raise FileRejected(
                "not a Debian DSA/DLA list: no '[DD Mon YYYY] DSA-NNNN-N package - title' line"
            )

    def _finish(self) -> None:
        if self.draft is not None:
            self.c.add(self.draft.advisory())
            self.draft = None

    def _header(self, line: str, number: int) -> None:
        self._finish()
        c = self.c
        match = _HEADER.fullmatch(line)
        if match is None:
            self.skipping = True
            c.reject(c.at_line(number), f"not an advisory header: {line[:80]!r}")
            return
        self.headers += 1
        advisory_id = match["id"]
        where = c.at_line(number, advisory_id)
        month = MONTHS.get(match["month"])
        try:
            if month is None:
                raise ValueError(f"unknown month {match['month']!r}")
            published = datetime(int(match["year"]), month, int(match["day"]), tzinfo=UTC)
        except ValueError as exc:
            self.skipping = True
            c.reject(where, f"invalid date: {exc}")
            return
        if advisory_id in self.ids:
            self.skipping = True
            c.reject(
                where, f"{advisory_id} is listed again (first at line {self.ids[advisory_id]})"
            )
            return
        self.ids[advisory_id] = number
        self.skipping = False
        title = (match["rest"] or "").strip().removeprefix("- ").strip() or None
        self.draft = _Draft(advisory_id, number, title, published)

    def _body(self, line: str, number: int, draft: _Draft) -> None:
        c = self.c
        if line.startswith("{"):
            match = _CVES.fullmatch(line)
            if match is None:
                c.reject_part(
                    draft.id, c.at_line(number, draft.id), f"unterminated id list: {line[:80]!r}"
                )
                return
            draft.aliases.extend(match["ids"].split())
        elif line.startswith("["):
            try:
                entry = _affected(line)
            except ValueError as exc:
                c.reject_part(draft.id, c.at_line(number, draft.id), str(exc))
                return
            if entry is None:
                c.tally("{n} release lines say <not-affected> (no affected entry)")
            else:
                draft.affected.append(entry)
        elif line.startswith("NOTE:"):
            draft.notes.append(line.removeprefix("NOTE:").strip())
        else:
            c.reject_part(
                draft.id, c.at_line(number, draft.id), f"line not understood: {line[:80]!r}"
            )


def _affected(line: str) -> AffectedPackage | None:
    """The entry of one ``[release] - package version|<status> (note)`` line."""
    match = _RELEASE.fullmatch(line)
    if match is None:
        raise ValueError(f"not a '[release] - package version' line: {line[:80]!r}")
    release, package, what = match["release"], match["package"], match["what"]
    note = match["note"][1:-1].strip() if match["note"] else None
    number = DEBIAN_CODENAMES.get(release)
    if number is None:
        raise ValueError(
            f"unknown Debian release {release!r} (known: {', '.join(DEBIAN_CODENAMES)})"
        )
    platform = f"debian:{number}"
    if what.startswith("<"):
        if what not in _STATUSES:
            raise ValueError(
                f"unknown status {what} (expected a version or {', '.join(_STATUSES)})"
            )
        if what == "<not-affected>":
            return None
        if what == "<end-of-life>":
            note = f"end-of-life; {note}" if note else "end-of-life"
        return AffectedPackage(platform, package, all_versions=True, note=note)
    error = version_error("deb", what)
    if error:
        raise ValueError(f"fixed version {what!r} is not a valid deb version: {error}")
    fixed = AffectedRange("ECOSYSTEM", (RangeEvent("introduced", "0"), RangeEvent("fixed", what)))
    return AffectedPackage(platform, package, ranges=(fixed,), note=note)


FEED: Final = DebianTrackerFeed()
