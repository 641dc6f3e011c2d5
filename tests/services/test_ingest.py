"""Ingestion rules on both databases: baselines, deltas, several kernels,
history at any moment, and stale marking with an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from patchwarden.domain.inventory import AgentReport, Facts, InstalledPackage
from patchwarden.errors import Conflict, FullReportRequired, PermissionDenied
from patchwarden.services import agents, assets, ingest
from patchwarden.storage.db import transaction
from patchwarden.storage.tables import Agent, Asset

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def kernel(version: str) -> InstalledPackage:
    return InstalledPackage("rpm", "kernel", version, "x86_64", "kernel", version)


def new_agent(factory: sessionmaker[Session]) -> tuple[int, int]:
    with transaction(factory) as session:
        token, _ = agents.create_enrollment_token(session, "test", timedelta(hours=1))
        enrolled = agents.enroll(session, token, "rhel-9", None, "test")
    return enrolled.agent_id, enrolled.asset_id


def send(
    factory: sessionmaker[Session], agent_id: int, report: AgentReport, at: datetime
) -> ingest.IngestResult:
    with transaction(factory) as session:
        agent = session.get(Agent, agent_id)
        assert agent is not None
        return ingest.ingest_agent_report(session, agent, report, now=at)


def report(
    asset_id: int,
    seq: int,
    *,
    packages: list[InstalledPackage] | None = None,
    base_seq: int | None = None,
    added: list[InstalledPackage] | None = None,
    removed: list[InstalledPackage] | None = None,
) -> AgentReport:
    """A full report when `packages` is given, else a delta on `base_seq`."""
    return AgentReport(
        asset_id=asset_id,
        seq=seq,
        kind="full" if packages is not None else "delta",
        base_seq=base_seq,
        agent_version="t",
        facts=Facts(hostname="rhel-9"),
        packages=packages or [],
        added=added or [],
        removed=removed or [],
    )


def test_several_kernels_and_point_in_time(session_factory: sessionmaker[Session]) -> None:
    agent_id, asset_id = new_agent(session_factory)
    old, mid, new = (
        kernel("5.14.0-362.8.1.el9_3"),
        kernel("5.14.0-427.13.1.el9_4"),
        kernel("5.14.0-503.11.1.el9_5"),
    )
    first = send(session_factory, agent_id, report(asset_id, 1, packages=[old, mid]), T0)
    assert (first.added, first.package_count) == (2, 2)
    # A new kernel installed next to the others: an install, not a change.
    second = send(
        session_factory,
        agent_id,
        report(asset_id, 2, base_seq=1, added=[new], removed=[]),
        T0 + timedelta(days=1),
    )
    assert (second.added, second.changed, second.package_count) == (1, 0, 3)
    # The oldest is removed a day later.
    third = send(
        session_factory,
        agent_id,
        report(asset_id, 3, base_seq=2, added=[], removed=[old]),
        T0 + timedelta(days=2),
    )
    assert (third.removed, third.package_count) == (1, 2)
    with transaction(session_factory) as session:

        def versions_at(moment: datetime | None) -> set[str]:
            return {p.version for p in assets.packages_of(session, asset_id, moment)}

        assert versions_at(T0 - timedelta(seconds=1)) == set()
        assert versions_at(T0) == {old.version, mid.version}
        assert versions_at(T0 + timedelta(days=1, hours=1)) == {
            old.version,
            mid.version,
            new.version,
        }
        assert versions_at(None) == {mid.version, new.version}
        events = [
            (e.action, e.old_version, e.new_version)
            for e in assets.package_events(session, asset_id)
        ]
        assert events == [("removed", old.version, None), ("installed", None, new.version)]


def test_delta_against_unknown_state_changes_nothing(
    session_factory: sessionmaker[Session],
) -> None:
    agent_id, asset_id = new_agent(session_factory)
    send(session_factory, agent_id, report(asset_id, 1, packages=[kernel("1-1")]), T0)
    with pytest.raises(FullReportRequired):
        send(
            session_factory,
            agent_id,
            report(asset_id, 2, base_seq=1, added=[], removed=[kernel("9-9")]),
            T0,
        )
    with pytest.raises(FullReportRequired):
        send(
            session_factory,
            agent_id,
            report(asset_id, 3, base_seq=1, added=[kernel("1-1")], removed=[]),
            T0,
        )
    with pytest.raises(Conflict):
        send(session_factory, agent_id, report(asset_id, 1, packages=[]), T0)
    with pytest.raises(PermissionDenied):
        send(session_factory, agent_id, report(asset_id + 1, 4, packages=[]), T0)
    with transaction(session_factory) as session:
        asset = session.get(Asset, asset_id)
        assert asset is not None
        assert (asset.inventory_seq, asset.last_report_seq, asset.package_count) == (1, 1, 1)
        assert [p.version for p in assets.packages_of(session, asset_id)] == ["1-1"]


def test_stale_assets_are_marked_and_recover(session_factory: sessionmaker[Session]) -> None:
    agent_id, asset_id = new_agent(session_factory)
    send(session_factory, agent_id, report(asset_id, 1, packages=[]), T0)
    with transaction(session_factory) as session:
        assert (
            ingest.mark_stale_assets(session, timedelta(hours=3), now=T0 + timedelta(hours=2)) == 0
        )
        assert (
            ingest.mark_stale_assets(session, timedelta(hours=3), now=T0 + timedelta(hours=4)) == 1
        )
        assert (
            ingest.mark_stale_assets(session, timedelta(hours=3), now=T0 + timedelta(hours=5)) == 0
        )
        asset = session.get(Asset, asset_id)
        assert asset is not None and asset.status == "stale"
    send(
        session_factory,
        agent_id,
        report(asset_id, 2, base_seq=1, added=[], removed=[]),
        T0 + timedelta(hours=6),
    )
    with transaction(session_factory) as session:
        asset = session.get(Asset, asset_id)
        assert asset is not None and asset.status == "active"
