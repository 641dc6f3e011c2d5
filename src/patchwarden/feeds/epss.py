"""EPSS scores (CSV, plain or gzip), as FIRST publishes them daily::

    #model_version:v2025.03.14,score_date:2025-08-01T00:00:00+0000
    cve,epss,percentile
    CVE-1999-0001,0.01141,0.77757

The comment line gives the model version and the score date of every row (it
is optional: older files lack it). Each row needs a CVE id and two numbers in
0..1; a broken row is rejected as ``file:LINE`` and the others are kept. A CVE
listed twice keeps its first row. A file that cannot be read to its end (a gzip
download cut mid-stream) is rejected whole: storing the rows before the cut
would leave the scores of two days mixed.
"""

from __future__ import annotations

import math
import re
from datetime import date
from typing import Final

from patchwarden.domain.advisories import EpssScore, ParsedFeed
from patchwarden.feeds.base import CVE_RE, Collector, FeedSource, FileRejected, parse_datetime

NAME: Final = "epss"
COLUMNS: Final = ("cve", "epss", "percentile")
_HEADER: Final = re.compile(
    rb"\A(?:\xef\xbb\xbf)?(?:#[^\n]*\n)?\s*cve\s*,\s*epss\s*,", re.IGNORECASE
)


class EpssFeed:
    name: Final = NAME

    def detect(self, head: bytes, filename: str) -> bool:
        return head.startswith(b"#model_version:") or bool(_HEADER.match(head))

    def parse(self, source: FeedSource) -> ParsedFeed:
        c = Collector(NAME, source)
        with c.whole_file():
            _Parser(c).run()
        return c.result()


class _Parser:
    def __init__(self, collector: Collector) -> None:
        self.c = collector
        self.model: str | None = None
        self.day: date | None = None
        self.columns: dict[str, int] | None = None
        self.width = 0
        self.seen: set[str] = set()

    def run(self) -> None:
        c = self.c
        for number, raw in c.lines(all_or_nothing=True):
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8").strip()
            except UnicodeDecodeError:
                c.reject(c.at_line(number), "not UTF-8 text")
                continue
            if not line:
                continue
            if line.startswith("#"):
                self._comment(line, number)
            elif self.columns is None:
                self._header(line, number)
            else:
                self._row(line, number)
        if self.columns is None:
            raise FileRejected("not an EPSS file: no 'cve,epss,percentile' header line")
        if self.model or self.day:
            c.note(f"EPSS model {self.model or 'unknown'}, scores of {self.day or 'unknown date'}")
        else:
            c.note("EPSS file without a model/score-date line: scores have no date")

    def _comment(self, line: str, number: int) -> None:
        for part in line[1:].split(","):
            key, _, value = part.partition(":")
            key, value = key.strip(), value.strip()
            if key == "model_version":
                self.model = value or None
            elif key == "score_date":
                try:
                    moment = parse_datetime(value, "score_date")
                except ValueError as exc:
                    self.c.reject(self.c.at_line(number), str(exc))
                    continue
                self.day = moment.date() if moment else None

    def _header(self, line: str, number: int) -> None:
        names = [n.strip().lower() for n in line.split(",")]
        if not set(COLUMNS) <= set(names):
            raise FileRejected(
                f"not an EPSS file: line {number} should be the header 'cve,epss,percentile', "
                f"not {line[:80]!r}"
            )
        self.columns = {name: names.index(name) for name in COLUMNS}
        self.width = len(names)

    def _row(self, line: str, number: int) -> None:
        # Hot loop (~300k rows a day): the location text is built only on errors.
        assert self.columns is not None
        cells = line.split(",")
        if len(cells) != self.width:
            found = len(cells)
            self.c.reject(
                self.c.at_line(number),
                f"expected {self.width} comma-separated values, found {found}",
            )
            return
        cve = cells[self.columns["cve"]].strip()
        if not CVE_RE.fullmatch(cve):
            self.c.reject(self.c.at_line(number), f"{cve[:40]!r} is not a CVE id (CVE-YYYY-NNNN)")
            return
        epss_text = cells[self.columns["epss"]]
        percentile_text = cells[self.columns["percentile"]]
        try:
            epss, percentile = float(epss_text), float(percentile_text)
        except ValueError:
            self._bad_numbers(cve, number, epss_text, percentile_text)
            return
        if not (0.0 <= epss <= 1.0 and 0.0 <= percentile <= 1.0):  # False for NaN too
            self._bad_numbers(cve, number, epss_text, percentile_text)
            return
        if cve in self.seen:
            self.c.reject(self.c.at_line(number, cve), "listed again; the first row is kept")
            return
        self.seen.add(cve)
        self.c.add(EpssScore(cve, epss, percentile, self.day, self.model))

    def _bad_numbers(self, cve: str, number: int, *texts: str) -> None:
        for column, text in zip(("epss", "percentile"), texts, strict=True):
            text = text.strip()
            try:
                value = float(text)
            except ValueError:
                reason = f"{column} {text[:40]!r} is not a number"
                break
            if math.isnan(value) or not 0.0 <= value <= 1.0:
                reason = f"{column} {text!r} is not between 0 and 1"
                break
        self.c.reject(self.c.at_line(number, cve), reason)


FEED: Final = EpssFeed()
