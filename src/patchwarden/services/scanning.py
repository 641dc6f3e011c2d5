"""The offline scanner: a package list (dpkg status, rpm -qa, requirements)
matched against the local advisory database. No server, no assets stored."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.table import Table
from sqlalchemy.orm import Session, sessionmaker

from patchwarden.domain.advisories import platform_of_os
from patchwarden.domain.inventory import InstalledPackage
from patchwarden.errors import InvalidInput
from patchwarden.matching.engine import match_packages, platform_of_package
from patchwarden.matching.index import AdvisoryIndex
from patchwarden.prioritize.risk import RiskInputs, risk_score
from patchwarden.scan import inputs, report
from patchwarden.scan.report import ScanRow
from patchwarden.services import findings
from patchwarden.storage.db import transaction

FORMATS = ("table", "json", "sarif")
# --fail-on takes the severities above "none", in the scan report's own order.
FAIL_ON = report.SEVERITIES[1:]
# Scans know nothing of the machine: its risk uses a middle-of-the-road context.
SCAN_CONTEXT: dict[str, Any] = {
    "criticality": 3,
    "internet_facing": False,
    "data_sensitivity": "internal",
}


@dataclass(frozen=True)
class ScanResult:
    rows: list[ScanRow]
    rendered: str | Table
    exit_code: int
    skipped: list[tuple[int, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInput(f"{path} does not exist") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"{path} is not UTF-8 text") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None


def _packages(
    dpkg_status: Path | None, rpm_qa: Path | None, requirements: Path | None, distro: str | None
) -> tuple[list[InstalledPackage], list[tuple[int, str]], str | None]:
    given = [p for p in (dpkg_status, rpm_qa, requirements) if p is not None]
    if len(given) != 1:
        raise InvalidInput("give exactly one of --dpkg-status, --rpm-qa, --requirements")
    platform = None
    if distro is not None:
        os_id, _, release = distro.partition(":")
        platform = platform_of_os(os_id, release)  # debian:bookworm as well as debian:12
        if platform is None:
            raise InvalidInput(
                f"unknown --distro {distro!r}: use ID:RELEASE, "
                "e.g. debian:12, ubuntu:22.04, alpine:3.19"
            )
    if requirements is not None:
        packages, skipped = inputs.parse_requirements(_read(requirements))
        return packages, skipped, platform
    if platform is None:
        raise InvalidInput("--distro ID:RELEASE is required with --dpkg-status and --rpm-qa")
    if dpkg_status is not None:
        packages, skipped = inputs.parse_dpkg_status(_read(dpkg_status))
    else:
        assert rpm_qa is not None
        packages, skipped = inputs.parse_rpm_qa(_read(rpm_qa))
    return packages, skipped, platform


def _check_coverage(
    index: AdvisoryIndex, platform: str | None, packages: list[InstalledPackage]
) -> None:
    """Refuse a scan that could find nothing whatever is installed (packages of
    another distribution, or one whose advisories were never imported): it must
    not pass as clean."""
    covered = index.platforms()
    for ecosystem in sorted({p.ecosystem for p in packages}):
        routed = platform_of_package(ecosystem, platform)
        if routed is None:
            raise InvalidInput(
                f"{ecosystem} packages cannot be matched on {platform}: "
                "give the --distro of the machine the list comes from"
            )
        if routed not in covered:
            raise InvalidInput(
                f"the local advisory database has no advisories for {routed}, so this "
                f"scan could not find anything; import them first (patchwarden feeds "
                f"import or feeds sync), or check --distro (known: {', '.join(sorted(covered))})"
            )


def scan_packages(
    session: Session, packages: list[InstalledPackage], platform: str | None
) -> list[ScanRow]:
    index = AdvisoryIndex.build(findings.load_advisories(session))
    if len(index) == 0:
        raise InvalidInput(
            "the local advisory database is empty: import advisories first, e.g. "
            "'patchwarden feeds import DSA_list.txt' or 'patchwarden feeds sync'"
        )
    _check_coverage(index, platform, packages)
    matches = match_packages(index, platform, packages)
    grouped = findings.group_matches(matches)
    info = findings.vulnerability_info(session, [key[3] for key in grouped])
    # One row per package and vulnerability: each keeps its own scores, so
    # --fail-on and SARIF never lend one CVE's severity to another.
    result = []
    for (_, name, _, vulnerability_id), entry in sorted(grouped.items(), key=lambda kv: kv[0][1:]):
        detail = info[vulnerability_id]
        result.append(
            ScanRow(
                package=name,
                installed_version=findings.lowest_version(entry.platform, entry.versions),
                fixed_version=findings.lowest_fix(entry.platform, entry.fixed),
                vulnerability_ids=(vulnerability_id,),
                advisory_ids=tuple(sorted(entry.advisories)),
                severity=detail.severity,
                cvss=detail.cvss_score,
                epss=detail.epss,
                kev=detail.kev,
                risk=risk_score(
                    RiskInputs(
                        cvss_base=detail.cvss_score,
                        severity=detail.severity,
                        epss=detail.epss,
                        kev=detail.kev,
                        kev_ransomware=detail.kev_ransomware,
                        **SCAN_CONTEXT,
                    )
                ).score,
            )
        )
    return result


def scan_files(
    factory: sessionmaker[Session],
    *,
    dpkg_status: Path | None = None,
    rpm_qa: Path | None = None,
    requirements: Path | None = None,
    distro: str | None = None,
    fail_on: str | None = None,
    fmt: str = "table",
    tool_version: str = "",
) -> ScanResult:
    if fmt not in FORMATS:
        raise InvalidInput(f"--format must be one of {', '.join(FORMATS)}")
    if fail_on is not None and fail_on not in FAIL_ON:
        raise InvalidInput(f"--fail-on must be one of {', '.join(FAIL_ON)}")
    packages, skipped, platform = _packages(dpkg_status, rpm_qa, requirements, distro)
    with transaction(factory) as session:
        rows = scan_packages(session, packages, platform)
    rendered: str | Table
    if fmt == "json":
        rendered = report.to_json(rows)
    elif fmt == "sarif":
        scanned = next(p for p in (dpkg_status, rpm_qa, requirements) if p is not None)
        rendered = report.to_sarif(rows, tool_version, artifact_uri=report.artifact_uri(scanned))
    else:
        rendered = report.to_table(rows)
    warnings = _hidden_epochs(packages, rows) if rpm_qa is not None else []
    return ScanResult(rows, rendered, report.exit_code(rows, fail_on), list(skipped), warnings)


def _hidden_epochs(packages: list[InstalledPackage], rows: list[ScanRow]) -> list[str]:
    """Plain `rpm -qa` lines show no epoch, so a fix with one (1:3.0.7-28.el9)
    ranks above any such version: say which findings may be false positives."""
    plain = {p.name for p in packages if p.source_name is None and ":" not in p.version}
    doubtful = sorted(
        {
            f"{row.package} {row.installed_version} (fix {row.fixed_version})"
            for row in rows
            if row.package in plain
            and row.fixed_version is not None
            and ":" in row.fixed_version
            and not row.fixed_version.startswith("0:")
        }
    )
    if not doubtful:
        return []
    shown = ", ".join(doubtful[:5]) + (
        f" and {len(doubtful) - 5} more" if len(doubtful) > 5 else ""
    )
    return [
        f"{len(doubtful)} package(s) listed without an epoch are compared with fixes that "
        f"have one, and may be reported wrongly: {shown}. List the packages with "
        f"rpm -qa --qf '{inputs.RPM_QUERY_FORMAT}'"
    ]
