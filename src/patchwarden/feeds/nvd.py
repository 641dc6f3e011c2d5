"""NVD CVE API 2.0 JSON: an API response page or a 2.0 data-feed file
(``nvdcve-2.0-2024.json.gz``), both
``{"resultsPerPage", "startIndex", "totalResults", "format": "NVD_CVE",
"version": "2.0", "timestamp", "vulnerabilities": [{"cve": {…}}]}``.

Each ``cve`` becomes a :class:`VulnerabilityRecord`: the English description,
``published`` / ``lastModified`` (NVD writes UTC without an offset),
``vulnStatus``, every CVSS metric (``cvssMetricV40``, ``V31``, ``V30``,
``V2``; ``type`` "Primary" or "Secondary") and the CWE ids of
``weaknesses`` (NVD's placeholders ``NVD-CWE-Other`` / ``NVD-CWE-noinfo``
are left out). A metric whose vector cannot be parsed is left out and
reported; the file is walked entry by entry, never loaded whole.
"""

from __future__ import annotations

import re
from typing import Final

from patchwarden.domain.advisories import CvssMetric, ParsedFeed, VulnerabilityRecord
from patchwarden.feeds.base import (
    CVE_RE,
    Collector,
    FeedSource,
    FileRejected,
    cvss_error,
    parse_datetime,
    text_or_none,
)

NAME: Final = "nvd"
METRIC_KEYS: Final = {
    "cvssMetricV40": "4.0",
    "cvssMetricV31": "3.1",
    "cvssMetricV30": "3.0",
    "cvssMetricV2": "2.0",
}
_CWE: Final = re.compile(r"CWE-\d+")
_FORMAT: Final = re.compile(rb'"format"\s*:\s*"NVD_CVE"')


class NvdFeed:
    name: Final = NAME

    def detect(self, head: bytes, filename: str) -> bool:
        return bool(_FORMAT.search(head))

    def parse(self, source: FeedSource) -> ParsedFeed:
        c = Collector(NAME, source)
        with c.whole_file(), c.json_document() as reader:
            if reader.first_char() != "{":
                raise FileRejected("not an NVD CVE API 2.0 document: expected a JSON object")
            header: dict[str, object] = {}
            entries = with_cve = 0
            for index, value in reader.items_of("vulnerabilities", header):
                entries += 1
                where = c.at(f"vulnerabilities[{index}]")
                cve = value.get("cve") if isinstance(value, dict) else None
                if not isinstance(cve, dict):
                    c.reject(where, "no 'cve' object")
                    continue
                with_cve += 1
                cve_id = cve.get("id")
                if isinstance(cve_id, str):
                    where = f"{where} {cve_id}"
                try:
                    c.add(_record(cve, c, where))
                except ValueError as exc:
                    c.reject(where, str(exc))
            reader.end()
            if header.get("format") != "NVD_CVE" or not isinstance(
                header.get("vulnerabilities"), list
            ):
                keys = ", ".join(list(header)[:6])
                raise FileRejected(
                    'not an NVD CVE API 2.0 document: expected "format": "NVD_CVE" and a '
                    f"'vulnerabilities' list (keys: {keys})"
                )
            if entries and not with_cve:
                raise FileRejected("not an NVD CVE API 2.0 document: no entry has a 'cve'")
            c.note(_summary(header, entries))
        return c.result()


def _summary(header: dict[str, object], entries: int) -> str:
    text = f"NVD CVE API {header.get('version')} data of {header.get('timestamp')}: {entries} CVEs"
    start, total = header.get("startIndex"), header.get("totalResults")
    if isinstance(start, int) and isinstance(total, int) and (start or entries < total):
        text += f" (results {start + 1}-{start + entries} of {total}: fetch the other pages too)"
    return text


def _record(cve: dict[str, object], c: Collector, where: str) -> VulnerabilityRecord:
    cve_id = cve.get("id")
    if not isinstance(cve_id, str) or not CVE_RE.fullmatch(cve_id):
        raise ValueError(f"id {cve_id!r} is not a CVE id (CVE-YYYY-NNNN)")
    status = cve.get("vulnStatus")
    return VulnerabilityRecord(
        id=cve_id,
        description=_description(cve.get("descriptions")),
        published=parse_datetime(cve.get("published"), "published"),
        modified=parse_datetime(cve.get("lastModified"), "lastModified"),
        status=status if isinstance(status, str) else None,
        cvss=_metrics(cve.get("metrics"), c, where, cve_id),
        cwes=_cwes(cve.get("weaknesses")),
    )


def _description(raw: object) -> str | None:
    if not isinstance(raw, list):
        return None
    texts = [d for d in raw if isinstance(d, dict) and text_or_none(d.get("value"))]
    english = [d for d in texts if d.get("lang") == "en"] or texts
    return text_or_none(english[0]["value"]) if english else None


def _metrics(raw: object, c: Collector, where: str, cve_id: str) -> tuple[CvssMetric, ...]:
    if not isinstance(raw, dict):
        return ()
    metrics: list[CvssMetric] = []
    for key, version in METRIC_KEYS.items():
        entries = raw.get(key)
        if not isinstance(entries, list):
            continue
        for index, entry in enumerate(entries):
            place = f"{where} metrics.{key}[{index}]"
            data = entry.get("cvssData") if isinstance(entry, dict) else None
            if not isinstance(data, dict) or not isinstance(entry, dict):
                c.reject_part(cve_id, place, "no 'cvssData'")
                continue
            vector = data.get("vectorString")
            if not isinstance(vector, str) or not vector.strip():
                c.reject_part(cve_id, place, "no 'vectorString'")
                continue
            error = cvss_error(vector)
            if error:
                c.reject_part(cve_id, place, f"invalid CVSS vector {vector!r}: {error}")
                continue
            score = data.get("baseScore")
            if (
                isinstance(score, bool)
                or not isinstance(score, int | float)
                or not 0 <= score <= 10
            ):
                score = None
            given = data.get("version")
            source = entry.get("source")
            metrics.append(
                CvssMetric(
                    version=given if isinstance(given, str) and given else version,
                    vector=vector.strip(),
                    base_score=None if score is None else float(score),
                    source=source if isinstance(source, str) else None,
                    primary=entry.get("type", "Primary") == "Primary",
                )
            )
    return tuple(metrics)


def _cwes(raw: object) -> tuple[str, ...]:
    if not isinstance(raw, list):
        return ()
    found: list[str] = []
    for weakness in raw:
        descriptions = weakness.get("description") if isinstance(weakness, dict) else None
        if not isinstance(descriptions, list):
            continue
        for item in descriptions:
            value = item.get("value") if isinstance(item, dict) else None
            if isinstance(value, str) and _CWE.fullmatch(value.strip()):
                found.append(value.strip())
    return tuple(dict.fromkeys(found))


FEED: Final = NvdFeed()
