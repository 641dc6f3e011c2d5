"""Findings on SQLite and PostgreSQL: real advisories (DSA, USN, KEV entries)
matched against assets given an inventory through the ingestion service; fixes,
reopening, dirty marking, withdrawal, filters, risk and SLA."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, select, text
from sqlalchemy.orm import Session, sessionmaker

from patchwarden.domain.attributes import AssetAttributes
from patchwarden.domain.inventory import Facts, InstalledPackage
from patchwarden.errors import NotFound
from patchwarden.services import (
    assets,
    exceptions,
    feeds,
    finding_counts,
    findings,
    groups,
    ingest,
    priorities,
)
from patchwarden.services.priorities import ScoringContext
from patchwarden.storage.db import transaction
from patchwarden.storage.tables import Asset, AssetDirtyName, Finding, utcnow
from tests.services.test_feeds import DSA_TEXT, KEV_PWNKIT, kev_catalogue, osv_record, write_json

# Written by hand: a regression update naming CVE-2022-2068 again with a later
# fix, and a flaw Debian has not fixed yet.
DSA_WRITTEN = """\
[01 Mar 2023] DSA-9002-1 openssl - regression update
\t{CVE-2022-2068}
\t[bullseye] - openssl 1.1.1n-0+deb11u5
[02 Mar 2023] DSA-9001-1 sudo - security update
\t{CVE-2023-99001}
\t[bullseye] - sudo <unfixed>
"""

OPENSSL_CVES = ["CVE-2022-2097", "CVE-2022-4304", "CVE-2022-4450", "CVE-2023-0215", "CVE-2023-0286"]
# Default context of a new asset: tier 3 (0.8), internal network (0.8), internal data (0.8).
CONTEXT = 0.8 * 0.8 * 0.8
# No CVSS and no severity: 5.5 × 6 points; KEV adds 25.
PLAIN_RISK = round(5.5 * 6 * CONTEXT, 1)  # 16.9
KEV_RISK = round((5.5 * 6 + 25) * CONTEXT, 1)  # 29.7


@pytest.fixture(autouse=True)
def fresh_index_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """The process-wide index cache knows only the feed generation, not which
    database it was built from: each test gets its own (a real IndexCache)."""
    monkeypatch.setattr(findings, "INDEX_CACHE", findings.IndexCache())


def deb(
    name: str, version: str, source: str | None = None, arch: str = "amd64"
) -> InstalledPackage:
    return InstalledPackage("deb", name, version, arch, source or name, version)


def libssl(version: str) -> InstalledPackage:
    return deb("libssl1.1", version, "openssl")


DEBIAN_PACKAGES = [
    libssl("1.1.1n-0+deb11u1"),
    deb("policykit-1", "0.105-31"),
    deb("sudo", "1.9.5p2-3"),
    deb("bash", "5.1-2+deb11u1"),
]


def new_asset(
    factory: sessionmaker[Session],
    hostname: str,
    packages: list[InstalledPackage],
    os_id: str = "debian",
    os_version_id: str = "11",
) -> int:
    with transaction(factory) as session:
        asset = Asset(hostname=hostname, source="ssh")
        session.add(asset)
        session.flush()
        ingest.ingest_collected_inventory(
            session,
            asset.id,
            packages,
            Facts(hostname=hostname, os_id=os_id, os_version_id=os_version_id),
            None,
            "ssh",
        )
        return asset.id


def set_inventory(
    factory: sessionmaker[Session], asset_id: int, packages: list[InstalledPackage]
) -> None:
    with transaction(factory) as session:
        asset = session.get(Asset, asset_id)
        assert asset is not None
        facts = Facts(os_id=asset.os_id, os_version_id=asset.os_version_id)
        ingest.ingest_collected_inventory(session, asset_id, packages, facts, None, "ssh")


def import_text(
    factory: sessionmaker[Session], path: Path, text: str, fmt: str | None = None
) -> feeds.ImportSummary:
    path.write_text(text)
    return feeds.import_feed(factory, path, fmt, "test")


def import_debian(factory: sessionmaker[Session], tmp_path: Path) -> None:
    import_text(factory, tmp_path / "DSA_list.txt", DSA_TEXT)
    import_text(factory, tmp_path / "DSA_written.txt", DSA_WRITTEN)


def import_kev(factory: sessionmaker[Session], tmp_path: Path) -> None:
    write_json(tmp_path / "kev.json", kev_catalogue(KEV_PWNKIT))
    feeds.import_feed(factory, tmp_path / "kev.json", None, "test")


def all_findings(factory: sessionmaker[Session], asset_id: int) -> dict[tuple[str, str], Finding]:
    with transaction(factory) as session:
        rows = session.execute(select(Finding).where(Finding.asset_id == asset_id)).scalars()
        found = {(f.package_name, f.vulnerability_id): f for f in rows}
        session.expunge_all()
        return found


def views(factory: sessionmaker[Session], asset_id: int) -> dict[tuple[str, str], dict[str, Any]]:
    """Every finding of the asset as people see it (risk components, SLA rule)."""
    with transaction(factory) as session:
        rows = findings.list_findings(
            session, findings.FindingFilter(asset_id=asset_id, status=None)
        )
        return {
            (v["package"], v["vulnerability_id"]): v for v in findings.finding_views(session, rows)
        }


def statuses(factory: sessionmaker[Session], asset_id: int) -> dict[tuple[str, str], str]:
    return {key: f.status for key, f in all_findings(factory, asset_id).items()}


def is_dirty(factory: sessionmaker[Session], asset_id: int) -> bool:
    """Marked to be matched again: wholly, or its packages of some names."""
    with transaction(factory) as session:
        asset = session.get(Asset, asset_id)
        assert asset is not None
        return asset.findings_dirty or asset.names_dirty


def dirty_names(factory: sessionmaker[Session], asset_id: int) -> set[str] | None:
    """The names to match again, or None when the whole asset is."""
    with transaction(factory) as session:
        asset = session.get(Asset, asset_id)
        assert asset is not None
        if asset.findings_dirty:
            return None
        return set(
            session.execute(
                select(AssetDirtyName.name).where(AssetDirtyName.asset_id == asset_id)
            ).scalars()
        )


def needs_rescore(factory: sessionmaker[Session], asset_id: int) -> bool:
    """Marked for new scores only (not to be matched again)."""
    with transaction(factory) as session:
        asset = session.get(Asset, asset_id)
        assert asset is not None
        return asset.scores_dirty and not (asset.findings_dirty or asset.names_dirty)


def recompute_at(factory: sessionmaker[Session], asset_id: int, now: datetime) -> None:
    with transaction(factory) as session:
        findings.recompute_asset(session, asset_id, findings.IndexCache().get(session), now=now)


@pytest.fixture
def debian_asset(session_factory: sessionmaker[Session], tmp_path: Path) -> int:
    import_debian(session_factory, tmp_path)
    return new_asset(session_factory, "deb-web", DEBIAN_PACKAGES)


def test_findings_opened_with_fixes_and_advisories(
    session_factory: sessionmaker[Session], debian_asset: int
) -> None:
    assert is_dirty(session_factory, debian_asset)
    result = findings.recompute_dirty(session_factory)
    assert (result.assets, result.opened, result.fixed, result.open_total) == (1, 8, 0, 8)
    assert not is_dirty(session_factory, debian_asset)
    found = all_findings(session_factory, debian_asset)
    expected = {
        # Two advisories fix CVE-2022-2068: the lowest fix is the one to install.
        ("libssl1.1", "CVE-2022-2068"): ("1.1.1n-0+deb11u3", ["DSA-5169-1", "DSA-9002-1"]),
        **{("libssl1.1", cve): ("1.1.1n-0+deb11u4", ["DSA-5343-1"]) for cve in OPENSSL_CVES},
        ("policykit-1", "CVE-2021-4034"): ("0.105-31+deb11u1", ["DSA-5059-1"]),
        # <unfixed>: affected, and no fix yet.
        ("sudo", "CVE-2023-99001"): (None, ["DSA-9001-1"]),
    }
    assert {k: (f.fixed_version, f.advisory_ids) for k, f in found.items()} == expected
    ssl = found[("libssl1.1", "CVE-2022-2068")]
    assert (ssl.status, ssl.installed_version, ssl.source_name, ssl.platform) == (
        "open",
        "1.1.1n-0+deb11u1",
        "openssl",
        "debian:11",
    )
    assert (ssl.ecosystem, ssl.package_arch, ssl.fixed_at) == ("deb", "amd64", None)
    assert {f.risk_score for f in found.values()} == {PLAIN_RISK}
    assert ssl.due_at == ssl.first_seen_at + timedelta(days=90)
    shown = views(session_factory, debian_asset)[("libssl1.1", "CVE-2022-2068")]
    assert shown["sla_rule"].startswith("no severity, treated as medium: 90 days after first seen")
    assert (shown["risk"], shown["due_at"], shown["sla_status"]) == (PLAIN_RISK, ssl.due_at, "ok")
    assert [c["name"] for c in shown["risk_components"]] == [
        "CVSS",
        "EPSS",
        "KEV",
        "Known ransomware use",
        "Asset criticality",
        "Internet exposure",
        "Data sensitivity",
    ]
    # Nothing changed: a second pass opens nothing and leaves the asset clean.
    assert findings.recompute_dirty(session_factory).assets == 0


def test_kev_listing_raises_risk_and_sets_the_kev_due_date(
    session_factory: sessionmaker[Session], debian_asset: int, tmp_path: Path
) -> None:
    import_kev(session_factory, tmp_path)
    first_seen = datetime(2022, 7, 1, 9, 0, tzinfo=UTC)
    recompute_at(session_factory, debian_asset, first_seen)
    found = all_findings(session_factory, debian_asset)
    pwnkit = found[("policykit-1", "CVE-2021-4034")]
    other = found[("libssl1.1", "CVE-2022-2068")]
    assert (pwnkit.risk_score, other.risk_score) == (KEV_RISK, PLAIN_RISK)
    shown = views(session_factory, debian_asset)[("policykit-1", "CVE-2021-4034")]
    kev = next(c for c in shown["risk_components"] if c["name"] == "KEV")
    assert (kev["value"], kev["contribution"]) == ("listed", 25.0)
    assert shown["kev"] is True
    # CISA's due date (end of that day, UTC) beats the 90 days of an unknown severity.
    assert pwnkit.first_seen_at == first_seen
    assert pwnkit.due_at == datetime(2022, 7, 18, 23, 59, 59, tzinfo=UTC)
    assert shown["sla_rule"] == (
        "KEV due date 2022-07-18 (earlier than no severity, treated as medium: "
        "90 days after first seen 2022-07-01, due 2022-09-29)"
    )
    assert other.due_at == first_seen + timedelta(days=90)


def test_kev_due_date_already_past_uses_the_kev_days(
    session_factory: sessionmaker[Session], debian_asset: int, tmp_path: Path
) -> None:
    import_kev(session_factory, tmp_path)
    first_seen = datetime(2023, 1, 10, tzinfo=UTC)
    recompute_at(session_factory, debian_asset, first_seen)
    pwnkit = all_findings(session_factory, debian_asset)[("policykit-1", "CVE-2021-4034")]
    assert pwnkit.due_at == first_seen + timedelta(days=14)
    shown = views(session_factory, debian_asset)[("policykit-1", "CVE-2021-4034")]
    assert shown["sla_rule"].startswith(
        "KEV due date 2022-07-18 passed before first seen: 14 days after first seen 2023-01-10"
    )


def test_kev_imported_after_findings_exist_rescores_them(
    session_factory: sessionmaker[Session], debian_asset: int, tmp_path: Path
) -> None:
    findings.recompute_dirty(session_factory)
    import_kev(session_factory, tmp_path)
    assert needs_rescore(session_factory, debian_asset)
    result = findings.recompute_dirty(session_factory)
    assert (result.assets, result.opened, result.updated) == (1, 0, 1)
    pwnkit = all_findings(session_factory, debian_asset)[("policykit-1", "CVE-2021-4034")]
    assert pwnkit.risk_score == KEV_RISK


def test_a_day_of_epss_rescores_as_a_rematch_would(
    session_factory: sessionmaker[Session], debian_asset: int, tmp_path: Path
) -> None:
    """New EPSS scores re-score findings without matching again (a package
    changed behind the server's back stays unmatched), and the scores written are
    exactly what a full re-match writes: it then finds nothing to change."""
    findings.recompute_dirty(session_factory)
    import_kev(session_factory, tmp_path)
    findings.recompute_dirty(session_factory)
    with transaction(session_factory) as session:
        priorities.set_sla_policy(
            session, "test", None, {"critical": 5, "high": 7, "medium": 20, "low": 40}
        )
        findings.mark_all_for_rescore(session)
    unscored = all_findings(session_factory, debian_asset)
    sla = findings.recompute_dirty(session_factory)
    assert (sla.opened, sla.fixed) == (0, 0) and sla.updated > 0
    rescored = all_findings(session_factory, debian_asset)
    assert any(rescored[k].due_at != unscored[k].due_at for k in rescored)
    with transaction(session_factory) as session:
        session.execute(
            text("UPDATE installed_packages SET version = '0.105-30' WHERE name = 'policykit-1'")
        )
    epss = tmp_path / "epss_scores-2025-08-01.csv"
    epss.write_text(
        "#model_version:v2025.03.14,score_date:2025-08-01T00:00:00+0000\n"
        "cve,epss,percentile\n"
        "CVE-2021-4034,0.85911,0.99351\n"
        "CVE-2022-2068,0.01536,0.80412\n"
    )
    with transaction(session_factory) as session:
        index = findings.INDEX_CACHE.get(session)
    feeds.import_feed(session_factory, epss, None, "test")
    assert needs_rescore(session_factory, debian_asset)
    before = all_findings(session_factory, debian_asset)
    result = findings.recompute_dirty(session_factory)
    assert (result.opened, result.fixed, result.updated) == (0, 0, 2)
    with transaction(session_factory) as session:
        # The process kept its advisory index: EPSS is not what matching reads.
        assert findings.INDEX_CACHE.get(session) is index
    after = all_findings(session_factory, debian_asset)
    changed = {k for k in after if after[k].risk_score != before[k].risk_score}
    assert changed == {("policykit-1", "CVE-2021-4034"), ("libssl1.1", "CVE-2022-2068")}
    assert after[("policykit-1", "CVE-2021-4034")].installed_version == "0.105-31"
    with transaction(session_factory) as session:
        findings.mark_all_assets(session)
    again = findings.recompute_dirty(session_factory)
    assert again.updated == 1  # only the installed version the rematch saw
    rematched = all_findings(session_factory, debian_asset)
    assert {k: (f.risk_score, f.due_at) for k, f in rematched.items()} == {
        k: (f.risk_score, f.due_at) for k, f in after.items()
    }


def test_upgrade_fixes_and_downgrade_reopens(
    session_factory: sessionmaker[Session], debian_asset: int
) -> None:
    findings.recompute_dirty(session_factory)
    before = all_findings(session_factory, debian_asset)
    others = [p for p in DEBIAN_PACKAGES if p.name != "libssl1.1"]

    # Up to DSA-5343-1's fix: its five flaws are fixed. The regression update
    # DSA-9002-1 still calls this build affected by CVE-2022-2068 (fixed in deb11u5).
    set_inventory(session_factory, debian_asset, [libssl("1.1.1n-0+deb11u4"), *others])
    assert is_dirty(session_factory, debian_asset)
    result = findings.recompute_dirty(session_factory)
    # "updated" counts findings whose computed columns changed: CVE-2022-2068 only.
    assert (result.opened, result.fixed, result.reopened, result.updated) == (0, 5, 0, 1)
    after = all_findings(session_factory, debian_asset)
    fixed = after[("libssl1.1", "CVE-2023-0286")]
    assert fixed.status == "fixed"
    assert fixed.fixed_at is not None and fixed.fixed_at >= fixed.first_seen_at
    assert fixed.fixed_reason == "upgraded"
    still = after[("libssl1.1", "CVE-2022-2068")]
    assert (still.status, still.installed_version) == ("open", "1.1.1n-0+deb11u4")
    assert (still.fixed_version, still.advisory_ids) == ("1.1.1n-0+deb11u5", ["DSA-9002-1"])
    assert still.first_seen_at == before[("libssl1.1", "CVE-2022-2068")].first_seen_at

    # Back down: the same findings open again, first seen when they first were.
    set_inventory(session_factory, debian_asset, [libssl("1.1.1n-0+deb11u1"), *others])
    result = findings.recompute_dirty(session_factory)
    assert (result.opened, result.fixed, result.reopened) == (0, 0, 5)
    reopened = all_findings(session_factory, debian_asset)[("libssl1.1", "CVE-2023-0286")]
    assert (reopened.status, reopened.fixed_at, reopened.fixed_reason) == ("open", None, None)
    assert reopened.id == before[("libssl1.1", "CVE-2023-0286")].id
    assert reopened.first_seen_at == before[("libssl1.1", "CVE-2023-0286")].first_seen_at
    assert reopened.installed_version == "1.1.1n-0+deb11u1"

    # Past every fix, and pwnkit's package removed: only sudo's unfixed flaw is left.
    set_inventory(session_factory, debian_asset, [libssl("1.1.1n-0+deb11u5"), *others[1:]])
    result = findings.recompute_dirty(session_factory)
    assert (result.fixed, result.open_total) == (7, 1)
    assert {k for k, s in statuses(session_factory, debian_asset).items() if s == "open"} == {
        ("sudo", "CVE-2023-99001")
    }
    last = all_findings(session_factory, debian_asset)
    assert last[("policykit-1", "CVE-2021-4034")].fixed_reason == "removed"
    assert last[("libssl1.1", "CVE-2022-2068")].fixed_reason == "upgraded"


@pytest.mark.parametrize(
    ("installed", "reason"),
    [
        ({"1.1.1n-0+deb11u5"}, "upgraded"),
        ({"1.1.1k-1+deb11u2"}, "downgraded"),
        ({"1.1.1n-0+deb11u1"}, "advisory"),
        ({"1.1.1n-0+deb11u1", "1.1.1n-0+deb11u5"}, "advisory"),  # the same build still there
        ({"1.1.1k-1", "1.1.1n-0+deb11u5"}, "upgraded"),  # any newer one
        (set(), "removed"),
        ({"not a version!", "1.1.1k-1"}, "downgraded"),  # what cannot be ordered is skipped
    ],
)
def test_fixed_reason_tells_what_changed_on_the_host(installed: set[str], reason: str) -> None:
    assert findings.fixed_reason("debian:11", "1.1.1n-0+deb11u1", installed) == reason
    assert set(findings.FIXED_REASONS) >= {reason}


def test_ubuntu_advisories_apply_to_their_own_release_only(
    session_factory: sessionmaker[Session], tmp_path: Path, shared_data: Path
) -> None:
    usn = json.loads((shared_data / "ubuntu-osv" / "usn_sample.jsonl").read_text().splitlines()[0])
    assert usn["id"] == "USN-6859-1"
    jammy_only = usn | {
        "affected": [a for a in usn["affected"] if a["package"]["ecosystem"] == "Ubuntu:22.04:LTS"]
    }
    write_json(tmp_path / "USN-6859-1.json", jammy_only)
    feeds.import_feed(session_factory, tmp_path / "USN-6859-1.json", None, "test")

    # The same vulnerable openssh build on a 22.04 and on a 24.04 machine.
    server = deb("openssh-server", "1:8.9p1-3ubuntu0.6", "openssh")
    jammy = new_asset(session_factory, "jammy", [server], "ubuntu", "22.04")
    noble = new_asset(session_factory, "noble", [server], "ubuntu", "24.04")
    findings.recompute_dirty(session_factory)
    (regresshion,) = all_findings(session_factory, jammy).values()
    assert (regresshion.vulnerability_id, regresshion.fixed_version, regresshion.platform) == (
        "CVE-2024-6387",
        "1:8.9p1-3ubuntu0.10",
        "ubuntu:22.04",
    )
    assert regresshion.advisory_ids == ["USN-6859-1"]
    assert all_findings(session_factory, noble) == {}

    # The whole record (its 24.04 entry too): now 24.04 has its own fix.
    summary = feeds.import_feed(
        session_factory, shared_data / "ubuntu-osv" / "usn_sample.jsonl", None, "test"
    )
    assert (summary.created, summary.updated) == (4, 1)
    assert is_dirty(session_factory, noble)
    findings.recompute_dirty(session_factory)
    (on_noble,) = all_findings(session_factory, noble).values()
    assert (on_noble.fixed_version, on_noble.platform) == ("1:9.6p1-3ubuntu13.3", "ubuntu:24.04")
    (on_jammy,) = all_findings(session_factory, jammy).values()
    assert on_jammy.fixed_version == "1:8.9p1-3ubuntu0.10"


@pytest.mark.parametrize("names_per_scan", [1, findings.NAMES_PER_SCAN])
def test_feed_import_marks_only_assets_holding_the_package(
    session_factory: sessionmaker[Session],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    names_per_scan: int,
) -> None:
    """The touched names are looked up in one scan of current packages, or in
    several when there are more than a scan takes."""
    monkeypatch.setattr(findings, "NAMES_PER_SCAN", names_per_scan)
    holder = new_asset(session_factory, "holder", [libssl("1.1.1n-0+deb11u1")])
    other = new_asset(session_factory, "other", [deb("bash", "5.1-2+deb11u1")])
    findings.recompute_dirty(session_factory)
    assert not is_dirty(session_factory, holder) and not is_dirty(session_factory, other)

    summary = import_text(session_factory, tmp_path / "DSA_list.txt", DSA_TEXT)
    assert ("debian:11", "openssl") in summary.touched and len(summary.touched) > 1
    assert dirty_names(session_factory, holder) == {"openssl"}  # libssl1.1's source
    assert not is_dirty(session_factory, other)
    result = findings.recompute_dirty(session_factory)
    assert (result.assets, result.opened) == (1, 6)

    # Importing the same file again marks nobody.
    import_text(session_factory, tmp_path / "DSA_list.txt", DSA_TEXT)
    assert not is_dirty(session_factory, holder)


def test_a_feed_change_matches_again_only_the_packages_it_names(
    session_factory: sessionmaker[Session], debian_asset: int, tmp_path: Path
) -> None:
    """An advisory change re-matches the holder's packages of that name only: a
    package changed behind the server's back keeps its findings, the named
    package's findings change, and the asset's counts and risk bound follow."""
    findings.recompute_dirty(session_factory)
    before = all_findings(session_factory, debian_asset)
    with transaction(session_factory) as session:
        session.execute(
            text("UPDATE installed_packages SET version = '1.9.5p2-9' WHERE name = 'sudo'")
        )
    # DSA-9002-1 again, naming one more flaw: only openssl's advisory changed.
    regression = DSA_WRITTEN.replace("{CVE-2022-2068}", "{CVE-2022-2068 CVE-2099-7777}")
    summary = import_text(session_factory, tmp_path / "DSA_written.txt", regression)
    assert summary.touched == {("debian:11", "openssl")}
    assert dirty_names(session_factory, debian_asset) == {"openssl"}
    result = findings.recompute_dirty(session_factory)
    assert (result.assets, result.opened, result.fixed, result.updated) == (1, 1, 0, 0)
    after = all_findings(session_factory, debian_asset)
    assert after[("libssl1.1", "CVE-2099-7777")].fixed_version == "1.1.1n-0+deb11u5"
    assert after[("sudo", "CVE-2023-99001")].installed_version == "1.9.5p2-3"  # not re-read

    def state(f: Finding) -> tuple[Any, ...]:
        return (f.status, f.installed_version, f.fixed_version, f.advisory_ids, f.risk_score)

    assert set(after) == set(before) | {("libssl1.1", "CVE-2099-7777")}
    assert {k: state(after[k]) for k in before} == {k: state(f) for k, f in before.items()}
    assert not is_dirty(session_factory, debian_asset)
    with transaction(session_factory) as session:
        assert session.execute(select(AssetDirtyName)).first() is None
        asset = session.get(Asset, debian_asset)
        assert asset is not None
        counted = (asset.open_findings, dict(asset.open_due_counts), asset.finding_risk_bound)
        finding_counts.recount(session, [debian_asset])
        assert (asset.open_findings, dict(asset.open_due_counts)) == counted[:2]
        assert counted[2] >= max(f.risk_score for f in after.values())
    # A full match now sees sudo's new version too.
    with transaction(session_factory) as session:
        findings.mark_all_assets(session)
    assert findings.recompute_dirty(session_factory).updated == 1


def test_findings_by_package_include_packages_a_rematch_found(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    """A package that first has findings on a re-match (installed later) is listed
    by name across the fleet, as is one whose findings came with the first match."""
    import_debian(session_factory, tmp_path)
    record = bash_advisory()
    feeds.import_feed(session_factory, write_json(tmp_path / "bash.json", record), None, "test")
    asset_id = new_asset(session_factory, "deb", [libssl("1.1.1n-0+deb11u1")])
    findings.recompute_dirty(session_factory)
    set_inventory(session_factory, asset_id, [libssl("1.1.1n-0+deb11u1"), deb("bash", "5.1-2")])
    assert findings.recompute_dirty(session_factory).opened == 1
    with transaction(session_factory) as session:
        for package, count in [("bash", 1), ("openssl", 6), ("libssl1.1", 6)]:
            listed = findings.list_findings(session, findings.FindingFilter(package=package))
            assert len(listed) == count, package


def test_withdrawn_advisory_fixes_its_findings(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    asset_id = new_asset(session_factory, "deb", DEBIAN_PACKAGES)
    record = bash_advisory()
    path = write_json(tmp_path / "DEBIAN-CVE-2099-0002.json", record)
    feeds.import_feed(session_factory, path, None, "test")
    findings.recompute_dirty(session_factory)
    assert statuses(session_factory, asset_id) == {("bash", "CVE-2099-0002"): "open"}

    write_json(
        path, record | {"modified": "2024-06-01T00:00:00Z", "withdrawn": "2024-06-01T00:00:00Z"}
    )
    summary = feeds.import_feed(session_factory, path, None, "test")
    assert summary.withdrawn == 1
    assert is_dirty(session_factory, asset_id)
    result = findings.recompute_dirty(session_factory)
    assert result.fixed == 1
    (finding,) = all_findings(session_factory, asset_id).values()
    assert finding.status == "fixed" and finding.fixed_at is not None
    # Nothing changed on the host: not a fix to count towards time-to-patch.
    assert finding.fixed_reason == "advisory"


def test_list_findings_filters_and_orders_by_risk(
    session_factory: sessionmaker[Session], debian_asset: int, tmp_path: Path
) -> None:
    import_kev(session_factory, tmp_path)
    second = new_asset(session_factory, "deb-db", [libssl("1.1.1n-0+deb11u4")])
    findings.recompute_dirty(session_factory)
    with transaction(session_factory) as session:

        def listed(**criteria: Any) -> list[tuple[str, str, str]]:
            flt = findings.FindingFilter(**criteria)
            return [
                (hostname, f.package_name, f.vulnerability_id)
                for f, _, hostname in findings.list_findings(session, flt)
            ]

        by_asset = listed(asset_id=debian_asset)
        assert len(by_asset) == 8
        # Highest risk first: the KEV-listed one leads.
        assert by_asset[0] == ("deb-web", "policykit-1", "CVE-2021-4034")
        assert listed(asset_id=second) == [("deb-db", "libssl1.1", "CVE-2022-2068")]
        # "Which assets have CVE-2022-2068?"
        assert listed(vulnerability_id="CVE-2022-2068") == [
            ("deb-web", "libssl1.1", "CVE-2022-2068"),
            ("deb-db", "libssl1.1", "CVE-2022-2068"),
        ]
        # By binary or by source package name.
        assert listed(package="libssl1.1") == listed(package="openssl")
        assert len(listed(package="openssl")) == 7
        assert listed(package="sudo") == [("deb-web", "sudo", "CVE-2023-99001")]
        assert listed(min_risk=20.0) == [("deb-web", "policykit-1", "CVE-2021-4034")]
        assert listed(status="fixed") == []
        assert len(listed(status=None)) == 9
        page = findings.list_findings(session, findings.FindingFilter(), limit=3, offset=1)
        assert [f.id for f, _, _ in page] == [
            f.id for f, _, _ in findings.list_findings(session, findings.FindingFilter())
        ][1:4]
        risks = [
            f.risk_score for f, _, _ in findings.list_findings(session, findings.FindingFilter())
        ]
        assert risks == sorted(risks, reverse=True)

        row, context, hostname = findings.list_findings(
            session, findings.FindingFilter(vulnerability_id="CVE-2021-4034")
        )[0]
        assert (context.asset_id, context.criticality) == (debian_asset, 3)
        info = findings.vulnerability_info(session, ["CVE-2021-4034"])["CVE-2021-4034"]
        scoring = ScoringContext.load(session)
        later = datetime(2030, 1, 1, tzinfo=UTC)
        view = findings.finding_view(row, context, hostname, info, scoring, later)
        assert (view["hostname"], view["package"], view["kev"], view["risk"]) == (
            "deb-web",
            "policykit-1",
            True,
            KEV_RISK,
        )
        assert view["sla_status"] == "overdue"


@pytest.mark.parametrize("first_read", [1, 8])
def test_fleet_top_risks_read_by_asset_equal_a_full_sort(
    session_factory: sessionmaker[Session],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    first_read: int,
) -> None:
    """Top open risks are read asset by asset in the order of their risk bounds:
    every page equals sorting every open finding, with ties, excepted and fixed
    findings, stale bounds and filters."""
    monkeypatch.setattr(findings, "TOP_OPEN_FIRST_READ", first_read)
    monkeypatch.setattr(findings, "PACKAGE_FIRST_READ", first_read)
    import_debian(session_factory, tmp_path)
    import_kev(session_factory, tmp_path)
    ids = []
    for n in range(14):  # more assets than the first read takes
        packages = [p for i, p in enumerate(DEBIAN_PACKAGES) if (n >> i) % 2 or i == n % 4]
        asset_id = new_asset(session_factory, f"host-{n:02d}", packages)
        ids.append(asset_id)
        with transaction(session_factory) as session:
            attributes = AssetAttributes(criticality=1 + n % 4, internet_facing=n % 3 == 0)
            assets.update_attributes(session, "test", asset_id, attributes)
    with transaction(session_factory) as session:  # its fixed findings will lead
        attributes = AssetAttributes(criticality=1, internet_facing=True)
        assets.update_attributes(session, "test", ids[5], attributes)
    findings.recompute_dirty(session_factory)
    set_inventory(session_factory, ids[5], [libssl("1.1.1n-0+deb11u5")])  # all fixed
    # Partly fixed elsewhere: fixed findings on assets of every bound, while those
    # of the asset whose bound is 0 still rank among them (a bound covers unfixed
    # findings only, so lists of fixed ones read every asset).
    for n, asset_id in enumerate(ids):
        held = [p for i, p in enumerate(DEBIAN_PACKAGES) if (n >> i) % 2 or i == n % 4]
        if n != 5 and DEBIAN_PACKAGES[0] in held:
            set_inventory(session_factory, asset_id, [libssl("1.1.1n-0+deb11u4"), *held[1:]])
    findings.recompute_dirty(session_factory)
    with transaction(session_factory) as session:
        exceptions.add(
            session, "test", "asset", ids[3], "change freeze", utcnow() + timedelta(days=9)
        )
        exceptions.apply_active(session)
        # A bound left high (an upper bound is all the order needs): the last asset
        # is read first, and its findings tie with those of assets before it.
        session.execute(
            text("UPDATE assets SET finding_risk_bound = 99 WHERE id = :a"), {"a": ids[-1]}
        )
    with transaction(session_factory) as session:
        stored = session.execute(select(Finding)).scalars().all()
        every = [f for f in stored if f.status == "open"]
        assert len({f.risk_score for f in every}) > 3
        assert len(every) > len({f.risk_score for f in every}) + 10  # many ties

        def expected(
            package: str | None = None, min_risk: float | None = None, status: str | None = "open"
        ) -> list[int]:
            kept = [
                f
                for f in stored
                if (package is None or package in (f.package_name, f.source_name))
                and (min_risk is None or f.risk_score >= min_risk)
                and (status is None or f.status == status)
            ]
            return [f.id for f in sorted(kept, key=lambda f: (-f.risk_score, f.asset_id, f.id))]

        for package, min_risk, status in [
            (None, None, "open"),
            ("openssl", None, "open"),  # a source: its binaries' findings
            ("libssl1.1", None, "open"),  # a binary
            (None, 15.0, "open"),
            ("sudo", 9.0, "open"),
            ("openssl", None, None),
            ("openssl", None, "fixed"),
            ("policykit-1", None, "excepted"),
            ("no-such-package", None, None),
        ]:
            flt = findings.FindingFilter(package=package, min_risk=min_risk, status=status)
            want = expected(package, min_risk, status)
            assert want or package == "no-such-package"
            pages = [(n, 0) for n in range(1, len(want) + 1)]
            for limit, offset in [*pages, (7, 3), (40, 10), (1000, 0), (3, len(want))]:
                got = [f.id for f, _, _ in findings.list_findings(session, flt, limit, offset)]
                assert got == want[offset : offset + limit], (package, min_risk, limit, offset)
        assert not any(
            f.asset_id in (ids[3], ids[5])
            for f, _, _ in findings.list_findings(session, findings.FindingFilter())
        )
        bounds = dict(session.execute(select(Asset.id, Asset.finding_risk_bound)).all())
        top = {f.asset_id: f.risk_score for f in sorted(every, key=lambda f: f.risk_score)}
        assert all(bounds[a] == risk for a, risk in top.items() if a != ids[-1])
        assert bounds[ids[5]] == 0.0  # nothing unfixed


def test_group_sla_policy_sets_members_due_dates(
    session_factory: sessionmaker[Session], debian_asset: int
) -> None:
    outsider = new_asset(session_factory, "deb-db", [libssl("1.1.1n-0+deb11u1")])
    with transaction(session_factory) as session:
        groups.create_static(session, "test", "pci", [debian_asset])
        priorities.set_sla_policy(
            session, "test", "pci", {"critical": 5, "high": 10, "medium": 20, "low": 40}
        )
        findings.mark_all_assets(session)
    findings.recompute_dirty(session_factory)
    member = all_findings(session_factory, debian_asset)[("libssl1.1", "CVE-2023-0286")]
    assert member.due_at == member.first_seen_at + timedelta(days=20)
    shown = views(session_factory, debian_asset)[("libssl1.1", "CVE-2023-0286")]
    assert shown["sla_rule"].startswith("no severity, treated as medium: 20 days after")
    other = all_findings(session_factory, outsider)[("libssl1.1", "CVE-2023-0286")]
    assert other.due_at == other.first_seen_at + timedelta(days=90)
    with transaction(session_factory) as session:
        assert priorities.sla_policy(session, "pci").medium == 20
        assert priorities.sla_policy(session).medium == 90


def test_joining_a_group_applies_its_sla_policy(
    session_factory: sessionmaker[Session], debian_asset: int
) -> None:
    with transaction(session_factory) as session:
        groups.create_static(session, "test", "pci", [])
        priorities.set_sla_policy(
            session, "test", "pci", {"critical": 5, "high": 10, "medium": 20, "low": 40}
        )
    findings.recompute_dirty(session_factory)
    with transaction(session_factory) as session:
        groups.add_members(session, "test", "pci", [debian_asset])
    findings.recompute_dirty(session_factory)
    member = all_findings(session_factory, debian_asset)[("libssl1.1", "CVE-2023-0286")]
    assert member.due_at == member.first_seen_at + timedelta(days=20)


def test_criticality_change_rescores(
    session_factory: sessionmaker[Session], debian_asset: int
) -> None:
    findings.recompute_dirty(session_factory)
    with transaction(session_factory) as session:
        assets.update_attributes(
            session, "test", debian_asset, AssetAttributes(criticality=1, internet_facing=True)
        )
    assert needs_rescore(session_factory, debian_asset)
    result = findings.recompute_dirty(session_factory)
    assert (result.opened, result.updated) == (0, 8)
    found = all_findings(session_factory, debian_asset)
    # Tier 1 (1.0) × internet-facing (1.0) × internal data (0.8).
    assert {f.risk_score for f in found.values()} == {round(5.5 * 6 * 0.8, 1)}
    factors = {
        c["name"]: c["contribution"]
        for c in views(session_factory, debian_asset)[("sudo", "CVE-2023-99001")]["risk_components"]
        if c["kind"] == "multiplier"
    }
    assert factors == {"Asset criticality": 1.0, "Internet exposure": 1.0, "Data sensitivity": 0.8}
    # An attribute that is not part of the risk leaves findings alone.
    with transaction(session_factory) as session:
        assets.update_attributes(
            session, "test", debian_asset, AssetAttributes(timezone="Europe/Berlin")
        )
    assert not is_dirty(session_factory, debian_asset)
    assert not needs_rescore(session_factory, debian_asset)


def test_risk_weights_change_rescores(
    session_factory: sessionmaker[Session], debian_asset: int
) -> None:
    findings.recompute_dirty(session_factory)
    with transaction(session_factory) as session:
        priorities.set_risk_weights(session, "test", {"cvss": 3.0})
        findings.mark_all_for_rescore(session)
    assert needs_rescore(session_factory, debian_asset)
    findings.recompute_dirty(session_factory)
    found = all_findings(session_factory, debian_asset)
    assert {f.risk_score for f in found.values()} == {round(5.5 * 3 * CONTEXT, 1)}


def test_vulnerability_detail(
    session_factory: sessionmaker[Session], debian_asset: int, tmp_path: Path
) -> None:
    import_kev(session_factory, tmp_path)
    new_asset(session_factory, "deb-2", [deb("policykit-1", "0.105-31")])
    findings.recompute_dirty(session_factory)
    with transaction(session_factory) as session:
        detail = findings.vulnerability_detail(session, "CVE-2021-4034")
        assert (detail["id"], detail["kev"], str(detail["kev_due_date"])) == (
            "CVE-2021-4034",
            True,
            "2022-07-18",
        )
        assert detail["kev_ransomware"] is False
        assert detail["affected_assets"] == 2
        assert detail["description"] == "policykit-1 - security update"
        (advisory,) = detail["advisories"]
        assert (advisory["id"], advisory["source"], advisory["title"]) == (
            "DSA-5059-1",
            "debian-tracker",
            "policykit-1 - security update",
        )
        assert advisory["source_file"].endswith("DSA_list.txt")
        assert advisory["withdrawn_at"] is None

        twice = findings.vulnerability_detail(session, "CVE-2022-2068")
        assert [a["id"] for a in twice["advisories"]] == ["DSA-5169-1", "DSA-9002-1"]
        assert twice["affected_assets"] == 1 and twice["kev"] is False

        with pytest.raises(NotFound, match="CVE-1999-0001 is not in the advisory database"):
            findings.vulnerability_detail(session, "CVE-1999-0001")


def test_ensure_fresh_recomputes_a_dirty_asset_only(
    session_factory: sessionmaker[Session], debian_asset: int
) -> None:
    findings.ensure_fresh(session_factory, debian_asset)
    assert not is_dirty(session_factory, debian_asset)
    assert len(all_findings(session_factory, debian_asset)) == 8
    with pytest.raises(NotFound):
        findings.ensure_fresh(session_factory, 999_999)


def bash_advisory() -> dict[str, Any]:
    """A Debian OSV record (written by hand) for bash, fixed in 5.1-2+deb11u2."""
    return osv_record(
        "DEBIAN-CVE-2099-0002",
        ecosystem="Debian:11",
        name="bash",
        aliases=["CVE-2099-0002"],
        events=[{"introduced": "0"}, {"fixed": "5.1-2+deb11u2"}],
    )


def jinja2_advisory(tmp_path: Path) -> Path:
    return write_json(
        tmp_path / "PYSEC-2019-217.json",
        osv_record(
            "PYSEC-2019-217",
            name="Jinja2",
            aliases=["CVE-2019-10906", "GHSA-462w-v97r-4m45"],
            events=[{"introduced": "0"}, {"fixed": "2.10.1"}],
        ),
    )


JINJA2 = InstalledPackage("pypi", "Jinja2", "2.10", "", None, None)


def test_pypi_packages_match_whatever_the_name_spelling(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    feeds.import_feed(session_factory, jinja2_advisory(tmp_path), None, "test")
    asset_id = new_asset(session_factory, "app", [JINJA2, deb("bash", "5.1-2+deb11u1")])
    findings.recompute_dirty(session_factory)
    (finding,) = all_findings(session_factory, asset_id).values()
    assert (finding.package_name, finding.vulnerability_id, finding.platform) == (
        "Jinja2",
        "CVE-2019-10906",
        "pypi",
    )
    assert (finding.fixed_version, finding.advisory_ids) == ("2.10.1", ["PYSEC-2019-217"])


def test_pypi_feed_import_marks_assets_whatever_the_name_spelling(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    asset_id = new_asset(session_factory, "app", [JINJA2])
    findings.recompute_dirty(session_factory)
    summary = feeds.import_feed(session_factory, jinja2_advisory(tmp_path), None, "test")
    assert summary.touched == {("pypi", "jinja2")}
    assert is_dirty(session_factory, asset_id)


def test_rematching_an_unchanged_asset_writes_nothing(
    session_factory: sessionmaker[Session], debian_asset: int
) -> None:
    """Stored values (advisory ids as JSON text, due dates, risk) compare equal to
    freshly computed ones on both databases, so a re-match updates no row."""
    findings.recompute_dirty(session_factory)
    with transaction(session_factory) as session:
        first = session.get(Asset, debian_asset)
        assert first is not None
        first.findings_dirty = True
    result = findings.recompute_dirty(session_factory)
    assert (result.assets, result.opened, result.updated, result.fixed) == (1, 0, 0, 0)


def test_two_installed_versions_of_one_package_share_each_finding(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    # rpm keeps several kernels under one name; any package manager may report
    # two versions of a name mid-upgrade. One finding per vulnerability names
    # the lowest installed version.
    import_debian(session_factory, tmp_path)
    asset = new_asset(
        session_factory, "two-ssl", [libssl("1.1.1n-0+deb11u3"), libssl("1.1.1n-0+deb11u1")]
    )
    findings.recompute_dirty(session_factory)
    found = all_findings(session_factory, asset)
    assert {f.installed_version for f in found.values()} == {"1.1.1n-0+deb11u1"}
    assert set(found) == {("libssl1.1", "CVE-2022-2068")} | {
        ("libssl1.1", cve) for cve in OPENSSL_CVES
    }


def test_workers_share_one_run_and_keep_to_its_limit(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    import_debian(session_factory, tmp_path)
    ids = [new_asset(session_factory, f"deb-{i}", DEBIAN_PACKAGES) for i in range(7)]
    first = findings.recompute_dirty(session_factory, limit=3, batch=2, workers=2)
    assert (first.assets, first.opened) == (3, 3 * 8)
    assert sum(not is_dirty(session_factory, i) for i in ids) == 3
    rest = findings.recompute_dirty(session_factory, batch=2, workers=2)
    assert (rest.assets, rest.opened) == (4, 4 * 8)
    assert {frozenset(statuses(session_factory, i).items()) for i in ids} == {
        frozenset(statuses(session_factory, ids[0]).items())
    }
    assert len(statuses(session_factory, ids[0])) == 8


def test_rematch_keeps_due_dates_when_the_database_speaks_a_daylight_saving_zone(
    engine: Engine, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    if engine.dialect.name == "postgresql":
        # PostgreSQL returns instants in the session's zone; 90 days from January
        # in New York cross a DST change, which arithmetic in that zone would follow.
        event.listen(engine, "connect", _new_york_sessions)
        engine.dispose()
        with transaction(session_factory) as session:
            assert session.execute(text("SHOW TimeZone")).scalar_one() == "America/New_York"
    import_debian(session_factory, tmp_path)
    asset = new_asset(session_factory, "dst", DEBIAN_PACKAGES)
    first_seen = datetime(2026, 1, 10, tzinfo=UTC)
    recompute_at(session_factory, asset, first_seen)
    with transaction(session_factory) as session:
        later = findings.recompute_asset(
            session, asset, findings.IndexCache().get(session), now=datetime(2026, 6, 1, tzinfo=UTC)
        )
    assert (later.updated, later.opened, later.fixed) == (0, 0, 0)
    ssl = all_findings(session_factory, asset)[("libssl1.1", "CVE-2022-2068")]
    assert ssl.due_at == first_seen + timedelta(days=90)


def _new_york_sessions(connection: Any, _record: Any) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SET TimeZone = 'America/New_York'")
    connection.commit()


def test_a_feed_change_leaves_a_namesake_of_another_ecosystem_alone(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    """A Debian package and a PyPI package may share a name: a change to the
    Debian advisory matches the Debian one again and keeps the other's findings."""
    feeds.import_feed(session_factory, jinja2_advisory(tmp_path), None, "test")
    debian = osv_record(
        "DEBIAN-CVE-2099-0003",
        ecosystem="Debian:11",
        name="jinja2-debian",
        aliases=["CVE-2099-0003"],
        events=[{"introduced": "0"}, {"fixed": "2.10-2"}],
    )
    path = write_json(tmp_path / "DEBIAN-CVE-2099-0003.json", debian)
    feeds.import_feed(session_factory, path, None, "test")
    namesake = deb("Jinja2", "2.10-1", source="jinja2-debian")
    asset_id = new_asset(session_factory, "app", [JINJA2, namesake])
    findings.recompute_dirty(session_factory)
    assert set(statuses(session_factory, asset_id).values()) == {"open"}
    assert len(statuses(session_factory, asset_id)) == 2

    write_json(path, debian | {"modified": "2024-06-01T00:00:00Z", "aliases": ["CVE-2099-0004"]})
    feeds.import_feed(session_factory, path, None, "test")
    assert dirty_names(session_factory, asset_id) == {"jinja2-debian"}
    result = findings.recompute_dirty(session_factory)
    assert (result.opened, result.fixed) == (1, 1)
    assert statuses(session_factory, asset_id) == {
        ("Jinja2", "CVE-2019-10906"): "open",  # the PyPI one, untouched
        ("Jinja2", "CVE-2099-0003"): "fixed",  # no advisory names it any more
        ("Jinja2", "CVE-2099-0004"): "open",
    }


def test_a_view_waits_for_the_run_at_work_on_its_asset(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    """ensure_fresh takes the asset's lock as a run's claim does: while a run holds
    the asset it waits, then finds it recomputed instead of matching it again
    (which would write every finding twice)."""
    import_debian(session_factory, tmp_path)
    asset_id = new_asset(session_factory, "deb-busy", DEBIAN_PACKAGES)
    viewer = threading.Thread(target=findings.ensure_fresh, args=(session_factory, asset_id))
    with transaction(session_factory) as run:  # a run's claim, its work not yet committed
        claimed = run.get(Asset, asset_id, with_for_update=True)
        assert claimed is not None and claimed.findings_dirty
        viewer.start()
        time.sleep(0.5)  # the view asks meanwhile
        claimed.findings_dirty = False  # the run's work, findings aside
    viewer.join(timeout=60)
    assert not viewer.is_alive()
    with transaction(session_factory) as session:
        written = session.execute(select(Finding).where(Finding.asset_id == asset_id)).all()
    assert written == []  # left to the run, which recomputed it


def test_a_kernel_advisory_reaches_the_signed_kernel_images(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    """Debian's amd64 kernel images come from linux-signed-amd64; a DSA for linux
    published after the first match marks their holders and opens their findings."""
    import_debian(session_factory, tmp_path)
    image = InstalledPackage(
        "deb", "linux-image-5.10.0-20-amd64", "5.10.158-2", "amd64", "linux-signed-amd64",
        "5.10.158+2",
    )  # fmt: skip
    asset_id = new_asset(session_factory, "deb-kernel", [libssl("1.1.1n-0+deb11u5"), image])
    findings.recompute_dirty(session_factory)
    assert all_findings(session_factory, asset_id) == {}
    kernel_dsa = (
        "[02 Feb 2023] DSA-5324-1 linux - security update\n"
        "\t{CVE-2022-2873 CVE-2022-3545}\n"
        "\t[bullseye] - linux 5.10.162-1\n"
    )
    import_text(session_factory, tmp_path / "DSA_kernel.txt", kernel_dsa)
    assert dirty_names(session_factory, asset_id) == {"linux-signed-amd64"}
    assert findings.recompute_dirty(session_factory).opened == 2
    opened = all_findings(session_factory, asset_id)
    assert set(opened) == {
        ("linux-image-5.10.0-20-amd64", "CVE-2022-2873"),
        ("linux-image-5.10.0-20-amd64", "CVE-2022-3545"),
    }
    assert {f.fixed_version for f in opened.values()} == {"5.10.162-1"}
    with transaction(session_factory) as session:  # asked for by the kernel's name
        for flt in (
            findings.FindingFilter(package="linux"),
            findings.FindingFilter(package="linux", asset_id=asset_id),
        ):
            assert len(findings.list_findings(session, flt)) == 2


def test_a_vulnerability_is_found_whatever_case_it_is_typed_in(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    import_debian(session_factory, tmp_path)
    asset_id = new_asset(session_factory, "deb", DEBIAN_PACKAGES)
    findings.recompute_dirty(session_factory)
    with transaction(session_factory) as session:
        for typed in ("CVE-2021-4034", "cve-2021-4034"):
            flt = findings.FindingFilter(vulnerability_id=typed)
            assert [f.asset_id for f, _, _ in findings.list_findings(session, flt)] == [asset_id]
            assert findings.vulnerability_detail(session, typed)["id"] == "CVE-2021-4034"
