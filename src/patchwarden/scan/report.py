"""What ``patchwarden scan`` prints: JSON, SARIF 2.1.0, a table, and its exit code.

The formatters take :class:`ScanRow` values (one vulnerable package, with the
vulnerabilities and advisories that make it so, and what the database knows of
their severity) and return text or a rich table; they print nothing themselves.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import PurePath
from typing import Any, Final
from urllib.parse import quote

from rich.console import JustifyMethod
from rich.table import Table
from rich.text import Text

from patchwarden.errors import InvalidInput

SARIF_VERSION: Final = "2.1.0"
SARIF_SCHEMA: Final = "https://json.schemastore.org/sarif-2.1.0.json"
TOOL_NAME: Final = "patchwarden"

# Ranks of severities, lowest first. Feeds spell them differently; the aliases map
# Debian/Ubuntu ("negligible", "unimportant"), GitHub ("moderate") and Red Hat
# ("important") words onto these.
SEVERITIES: Final = ("none", "low", "medium", "high", "critical")
_RANK: Final = {name: rank for rank, name in enumerate(SEVERITIES)}
_ALIASES: Final = {
    "negligible": "low",
    "unimportant": "low",
    "moderate": "medium",
    "important": "high",
}
# An unknown severity (None, or a word not above) counts as critical for exit_code:
# a vulnerability nobody has scored yet cannot be shown to be below the bar.
UNKNOWN_SEVERITY_RANK: Final = _RANK["critical"]

_SARIF_LEVEL: Final = {"critical": "error", "high": "error", "medium": "warning"}
_STYLE: Final = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "green"}


@dataclass(frozen=True, slots=True)
class ScanRow:
    """One vulnerable package in a scan result."""

    package: str
    installed_version: str
    fixed_version: str | None  # None: no fixed version known
    vulnerability_ids: tuple[str, ...]
    advisory_ids: tuple[str, ...]
    severity: str | None = None  # "critical", "high", "medium", "low" ...
    cvss: float | None = None  # base score 0-10
    epss: float | None = None  # probability 0-1
    kev: bool | None = None  # listed in CISA KEV
    risk: float | None = None  # 0-100


def severity_rank(severity: str | None) -> int | None:
    """The rank of a severity word (see ``SEVERITIES``), None if unknown."""
    if severity is None:
        return None
    word = severity.strip().lower()
    return _RANK.get(_ALIASES.get(word, word))


def _normalised_severity(severity: str | None) -> str | None:
    rank = severity_rank(severity)
    return None if rank is None else SEVERITIES[rank]


# -- JSON ---------------------------------------------------------------------------------


def to_json(rows: Iterable[ScanRow]) -> str:
    """A JSON array with one object per row, keyed exactly by ScanRow's fields."""
    return json.dumps([asdict(row) for row in rows], indent=2, ensure_ascii=False)


# -- SARIF --------------------------------------------------------------------------------


def _level(severity: str | None) -> str:
    """critical/high -> error, medium -> warning, low/unknown -> note."""
    normalised = _normalised_severity(severity)
    return _SARIF_LEVEL.get(normalised, "note") if normalised else "note"


def _help_uri(vulnerability_id: str) -> str:
    if vulnerability_id.startswith("CVE-"):
        return f"https://nvd.nist.gov/vuln/detail/{vulnerability_id}"
    return f"https://osv.dev/vulnerability/{vulnerability_id}"


def _worst(rows: Sequence[ScanRow]) -> str | None:
    known = [(severity_rank(r.severity), r.severity) for r in rows]
    ranked = [(rank, severity) for rank, severity in known if rank is not None]
    return max(ranked)[1] if ranked else None


def artifact_uri(path: PurePath) -> str:
    """A scanned file as SARIF locates it: a URI reference (RFC 3986), relative as
    given, or a file: URI when absolute; spaces and the like percent-encoded."""
    return path.as_uri() if path.is_absolute() else quote(path.as_posix())


def to_sarif(rows: Iterable[ScanRow], tool_version: str, *, artifact_uri: str | None = None) -> str:
    """A SARIF 2.1.0 log: one rule per vulnerability id, one result per (package,
    installed version, vulnerability).

    Result levels follow severity (critical/high: error, medium: warning, low or
    unknown: note); rules carry ``security-severity`` (the CVSS score) as GitHub code
    scanning reads it. SARIF results locate problems in files: ``artifact_uri`` (the
    scanned file, e.g. ``requirements.txt``) gives every result that location, which
    GitHub code scanning requires; without it results have no location.
    """
    rows = list(rows)
    # (package, installed version, vulnerability) -> rows; kernels may share a name.
    results: dict[tuple[str, str, str], list[ScanRow]] = {}
    by_rule: dict[str, list[ScanRow]] = {}
    for row in rows:
        for vulnerability_id in row.vulnerability_ids:
            results.setdefault((row.package, row.installed_version, vulnerability_id), []).append(
                row
            )
            by_rule.setdefault(vulnerability_id, []).append(row)
    rule_index = {vulnerability_id: i for i, vulnerability_id in enumerate(by_rule)}
    rules = [_rule(vulnerability_id, group) for vulnerability_id, group in by_rule.items()]
    sarif_results = [
        _result(
            package, installed, vulnerability_id, group, rule_index[vulnerability_id], artifact_uri
        )
        for (package, installed, vulnerability_id), group in results.items()
    ]
    log = {
        "version": SARIF_VERSION,
        "$schema": SARIF_SCHEMA,
        "runs": [
            {
                "tool": {"driver": {"name": TOOL_NAME, "version": tool_version, "rules": rules}},
                "results": sarif_results,
            }
        ],
    }
    return json.dumps(log, indent=2, ensure_ascii=False)


def _rule(vulnerability_id: str, rows: Sequence[ScanRow]) -> dict[str, Any]:
    packages = ", ".join(dict.fromkeys(r.package for r in rows))
    rule: dict[str, Any] = {
        "id": vulnerability_id,
        "shortDescription": {"text": f"{vulnerability_id} in {packages}"},
        "helpUri": _help_uri(vulnerability_id),
        "defaultConfiguration": {"level": _level(_worst(rows))},
    }
    properties: dict[str, Any] = {"tags": ["security", "vulnerability"]}
    scores = [r.cvss for r in rows if r.cvss is not None]
    if scores:
        properties["security-severity"] = f"{max(scores):.1f}"
    rule["properties"] = properties
    return rule


def _result(
    package: str,
    installed: str,
    vulnerability_id: str,
    rows: Sequence[ScanRow],
    rule_index: int,
    artifact_uri: str | None,
) -> dict[str, Any]:
    first = rows[0]
    fixed = first.fixed_version
    advisories = list(dict.fromkeys(a for r in rows for a in r.advisory_ids))
    remedy = f"upgrade to {fixed}" if fixed else "no fixed version is known"
    text = f"{package} {installed} is affected by {vulnerability_id}: {remedy}."
    if advisories:
        text += f" Advisories: {', '.join(advisories)}."
    result: dict[str, Any] = {
        "ruleId": vulnerability_id,
        "ruleIndex": rule_index,
        "level": _level(_worst(rows)),
        "message": {"text": text},
        "properties": {
            "package": package,
            "installedVersion": installed,
            "fixedVersion": fixed,
            "advisoryIds": advisories,
            "severity": first.severity,
            "cvss": first.cvss,
            "epss": first.epss,
            "kev": first.kev,
            "risk": first.risk,
        },
    }
    if artifact_uri is not None:
        result["locations"] = [{"physicalLocation": {"artifactLocation": {"uri": artifact_uri}}}]
    return result


# -- table --------------------------------------------------------------------------------


def _or_dash(value: str | None) -> str:
    return "-" if value is None else value


def to_table(rows: Iterable[ScanRow]) -> Table:
    """A rich table, one line per row."""
    table = Table(title="Vulnerable packages")
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("Package", "left"),
        ("Installed", "left"),
        ("Fixed in", "left"),
        ("Vulnerabilities", "left"),
        ("Severity", "left"),
        ("CVSS", "right"),
        ("EPSS", "right"),
        ("KEV", "left"),
        ("Risk", "right"),
        ("Advisories", "left"),
    )
    for header, justify in columns:
        table.add_column(header, justify=justify)
    for row in rows:
        severity = _normalised_severity(row.severity)
        table.add_row(
            row.package,
            row.installed_version,
            row.fixed_version or Text("no fix", style="bold"),
            ", ".join(row.vulnerability_ids),
            Text(_or_dash(row.severity), style=_STYLE.get(severity or "", "")),
            _or_dash(None if row.cvss is None else f"{row.cvss:.1f}"),
            _or_dash(None if row.epss is None else f"{row.epss:.1%}"),
            _or_dash(None if row.kev is None else ("yes" if row.kev else "no")),
            _or_dash(None if row.risk is None else f"{row.risk:.0f}"),
            ", ".join(row.advisory_ids),
        )
    return table


# -- exit code ----------------------------------------------------------------------------


def exit_code(rows: Iterable[ScanRow], fail_on: str | None) -> int:
    """0 when the scan passes, 1 when it fails.

    ``fail_on`` None: any vulnerable package fails the scan. Otherwise a severity
    (none < low < medium < high < critical; aliases such as "moderate" accepted):
    the scan fails when a row is at least that severe. A row whose severity is
    unknown counts as critical: it fails at every threshold, because a vulnerability
    nobody has scored yet cannot be shown to be below the bar.
    """
    rows = list(rows)
    if fail_on is None:
        return 1 if rows else 0
    threshold = severity_rank(fail_on)
    if threshold is None:
        raise InvalidInput(
            f"unknown severity {fail_on!r} for fail-on; valid: {', '.join(SEVERITIES)}"
        )
    for row in rows:
        rank = severity_rank(row.severity)
        if (UNKNOWN_SEVERITY_RANK if rank is None else rank) >= threshold:
            return 1
    return 0
