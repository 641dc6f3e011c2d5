"""Each asset's findings counted as recomputation and exceptions change them, on
SQLite and PostgreSQL: after every step the stored counts equal a count of the
findings table, and the fleet's compliance figures equal one taken directly."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from patchwarden.domain.attributes import AssetAttributes
from patchwarden.services import assets, exceptions, feeds, finding_counts, findings
from patchwarden.storage.db import transaction
from patchwarden.storage.tables import Asset, Finding, utcnow
from tests.services.test_feeds import write_json
from tests.services.test_findings import (
    DEBIAN_PACKAGES,
    bash_advisory,
    import_debian,
    import_kev,
    libssl,
    new_asset,
    set_inventory,
)
from tests.services.test_findings import (
    fresh_index_cache as fresh_index_cache,
)

JUSTIFICATION = "accepted until the vendor ships a fixed build"
BASH_RECORD = bash_advisory()
WITHDRAWN = {"modified": "2024-06-01T00:00:00Z", "withdrawn": "2024-06-01T00:00:00Z"}


def bash_record_path(tmp_path: Path) -> Path:
    return tmp_path / "DEBIAN-CVE-2099-0002.json"


def stored_counts(session: Session) -> dict[int, dict[str, Any]]:
    return {
        a.id: {
            "open": a.open_findings,
            "excepted": a.excepted_findings,
            "fixed": a.fixed_findings,
            "open_due": dict(a.open_due_counts),
            "earliest_open_due": a.earliest_open_due,
        }
        for a in session.execute(select(Asset).order_by(Asset.id)).scalars()
    }


def direct_figures(session: Session, now: datetime) -> dict[str, int]:
    """The compliance figures counted over the findings table itself."""

    def count(*conditions: Any) -> int:
        return session.execute(select(func.count()).where(*conditions)).scalar_one()

    with_open = session.execute(
        select(func.count(func.distinct(Finding.asset_id))).where(Finding.status == "open")
    ).scalar_one()
    assets_total = session.execute(select(func.count()).select_from(Asset)).scalar_one()
    return {
        "assets": assets_total,
        "assets_compliant": assets_total - with_open,
        "open_findings": count(Finding.status == "open"),
        "overdue_findings": count(Finding.status == "open", Finding.due_at < now),
        "excepted_findings": count(Finding.status == "excepted"),
        "fixed_findings": count(Finding.status == "fixed"),
    }


def check(factory: sessionmaker[Session], *moments: datetime) -> dict[str, int]:
    """Stored counts equal a recount, and compliance equals the direct figures at
    each moment; returns the figures at the first."""
    with transaction(factory) as session:
        stored = stored_counts(session)
        finding_counts.recount(session, stored)
        assert stored_counts(session) == stored
        figures = []
        for now in moments:
            compliance = exceptions.compliance(session, now)
            direct = direct_figures(session, now)
            assert {k: compliance[k] for k in direct} == direct
            figures.append(direct)
        session.rollback()
    return figures[0]


def finding_id(factory: sessionmaker[Session], asset_id: int, vulnerability_id: str) -> int:
    with transaction(factory) as session:
        return session.execute(
            select(Finding.id).where(
                Finding.asset_id == asset_id, Finding.vulnerability_id == vulnerability_id
            )
        ).scalar_one()


def test_counts_follow_recomputation_and_exceptions(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    import_debian(session_factory, tmp_path)
    write_json(bash_record_path(tmp_path), BASH_RECORD)
    feeds.import_feed(session_factory, bash_record_path(tmp_path), None, "test")
    web = new_asset(session_factory, "deb-web", DEBIAN_PACKAGES)
    db = new_asset(session_factory, "deb-db", DEBIAN_PACKAGES[:2])
    empty = new_asset(session_factory, "deb-empty", [])
    start = utcnow()
    # Due dates fall 15 to 180 days after first seen: these moments fall before
    # all of them, among them, and after all of them.
    moments = [start, start + timedelta(days=100), start + timedelta(days=400)]

    findings.recompute_dirty(session_factory)  # the first match
    first = check(session_factory, *moments)
    assert (first["assets"], first["assets_compliant"], first["fixed_findings"]) == (3, 1, 0)
    assert first["open_findings"] > 0 and first["overdue_findings"] == 0
    assert check(session_factory, moments[2])["overdue_findings"] == first["open_findings"]
    with transaction(session_factory) as session:
        assert session.get(Asset, empty).open_due_counts == {}  # type: ignore[union-attr]

    # An upgrade fixes some of web's findings (a re-match).
    others = [p for p in DEBIAN_PACKAGES if p.name != "libssl1.1"]
    set_inventory(session_factory, web, [libssl("1.1.1n-0+deb11u4"), *others])
    findings.recompute_dirty(session_factory)
    upgraded = check(session_factory, *moments)
    assert upgraded["fixed_findings"] == 5

    # Exceptions: all of db, one finding of web; then one is revoked.
    one = finding_id(session_factory, web, "CVE-2021-4034")
    with transaction(session_factory) as session:
        far = utcnow() + timedelta(days=30)
        by_asset = exceptions.add(session, "alice", "asset", db, JUSTIFICATION, far)
        exceptions.add(session, "alice", "finding", one, JUSTIFICATION, far)
    excepted = check(session_factory, *moments)
    assert excepted["excepted_findings"] > 1
    assert excepted["open_findings"] == upgraded["open_findings"] - excepted["excepted_findings"]
    with transaction(session_factory) as session:
        exceptions.revoke(session, "alice", by_asset["id"], "the vendor shipped a fix")
    assert check(session_factory, *moments)["excepted_findings"] == 1

    # A KEV listing and a new criticality re-score (new due dates, no new match).
    import_kev(session_factory, tmp_path)
    with transaction(session_factory) as session:
        assets.update_attributes(session, "alice", db, AssetAttributes(criticality=1))
    findings.recompute_dirty(session_factory)
    check(session_factory, *moments)

    # Back down: the fixed findings reopen; a package removed fixes its findings.
    set_inventory(session_factory, web, [libssl("1.1.1n-0+deb11u1"), *others[1:]])
    findings.recompute_dirty(session_factory)
    downgraded = check(session_factory, *moments)
    assert downgraded["fixed_findings"] == 1  # pwnkit's, with its package

    # An advisory withdrawn fixes what only it named.
    write_json(bash_record_path(tmp_path), BASH_RECORD | WITHDRAWN)
    assert feeds.import_feed(session_factory, bash_record_path(tmp_path), None, "t").withdrawn
    findings.recompute_dirty(session_factory)
    assert check(session_factory, *moments)["fixed_findings"] == 2


def statuses(factory: sessionmaker[Session], asset_id: int) -> dict[tuple[str, str], str]:
    with transaction(factory) as session:
        rows = session.execute(select(Finding).where(Finding.asset_id == asset_id)).scalars()
        return {(f.package_name, f.vulnerability_id): f.status for f in rows}


def test_findings_opened_under_an_exception_are_excepted_at_once(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    """Recomputation itself excepts what an active acceptance covers: a package
    installed on an excepted asset, and a finding excepted by id that reopens on a
    downgrade, are never counted open (no upkeep round runs in between)."""
    import_debian(session_factory, tmp_path)
    frozen = new_asset(session_factory, "deb-frozen", DEBIAN_PACKAGES[:1])
    web = new_asset(session_factory, "deb-web", DEBIAN_PACKAGES[:1])
    findings.recompute_dirty(session_factory)
    one = finding_id(session_factory, web, "CVE-2023-0286")
    with transaction(session_factory) as session:
        far = utcnow() + timedelta(days=30)
        exceptions.add(session, "alice", "asset", frozen, JUSTIFICATION, far)
        exceptions.add(session, "alice", "finding", one, JUSTIFICATION, far)
    set_inventory(session_factory, web, [libssl("1.1.1n-0+deb11u4")])  # fixes it
    findings.recompute_dirty(session_factory)
    assert statuses(session_factory, web)[("libssl1.1", "CVE-2023-0286")] == "fixed"

    set_inventory(session_factory, frozen, DEBIAN_PACKAGES)  # new vulnerable packages
    set_inventory(session_factory, web, DEBIAN_PACKAGES[:1])  # back down: it reopens
    before = check(session_factory, utcnow())
    findings.recompute_dirty(session_factory)
    after = check(session_factory, utcnow())

    frozen_statuses = statuses(session_factory, frozen)
    assert {p for p, _ in frozen_statuses} == {"libssl1.1", "policykit-1", "sudo"}
    assert set(frozen_statuses.values()) == {"excepted"}
    web_statuses = statuses(session_factory, web)
    assert web_statuses.pop(("libssl1.1", "CVE-2023-0286")) == "excepted"
    assert set(web_statuses.values()) == {"open"}  # the rest: no acceptance covers them
    new_on_frozen = len(frozen_statuses) - before["excepted_findings"]
    assert new_on_frozen > 0
    assert after["excepted_findings"] == len(frozen_statuses) + 1
    assert after["open_findings"] == len(web_statuses)


def test_a_view_of_a_changed_asset_excepts_what_is_covered(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    """ensure_fresh (an asset's findings read before the run reaches it) excepts
    covered findings as the run does."""
    import_debian(session_factory, tmp_path)
    frozen = new_asset(session_factory, "deb-frozen", DEBIAN_PACKAGES[:1])
    findings.recompute_dirty(session_factory)
    with transaction(session_factory) as session:
        far = utcnow() + timedelta(days=30)
        exceptions.add(session, "alice", "asset", frozen, JUSTIFICATION, far)
    set_inventory(session_factory, frozen, DEBIAN_PACKAGES)
    findings.ensure_fresh(session_factory, frozen)
    assert set(statuses(session_factory, frozen).values()) == {"excepted"}
    check(session_factory, utcnow())
