"""Patch policy services end to end on a real database and a real apt repository
served on loopback: sync, available patches with the findings they close,
auto-approval rules, manual approvals with four-eyes, exceptions and baselines."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from patchwarden.errors import Conflict, InvalidInput, NotFound
from patchwarden.policy.errors import (
    ApproverRequired,
    FourEyesViolation,
    InvalidPattern,
    InvalidPolicy,
    NotDeployable,
)
from patchwarden.prioritize.risk import DEFAULT_WEIGHTS
from patchwarden.services import (
    approvals,
    baselines,
    exceptions,
    groups,
    patches,
    priorities,
    repositories,
    upkeep,
)
from patchwarden.services import findings as findings_service
from patchwarden.storage.db import transaction
from patchwarden.storage.tables import AuditEvent, Finding, Patch, RepositoryPackage
from tests.repos.builders import stanza, write_apt_suite
from tests.repos.repo_server import RepoServer, serve
from tests.services.test_findings import deb, import_debian, libssl, new_asset, set_inventory

OPERATOR = approvals.Actor("user:olivia", can_approve=False)
ALICE = approvals.Actor("user:alice", can_approve=True)
BOB = approvals.Actor("user:bob", can_approve=True)

# bullseye main carries the point release, bullseye-security the security fix.
MAIN = (
    stanza("libssl1.1", "1.1.1n-0+deb11u3", Source="openssl")
    + "\n"
    + stanza("bash", "5.1-2+deb11u2")
    + "\n"
    + stanza("tzdata", "2024a-0+deb11u1", arch="all")
)
SECURITY = (
    stanza("libssl1.1", "1.1.1n-0+deb11u4", Source="openssl")
    + "\n"
    + stanza("policykit-1", "0.105-31+deb11u1")
)


@contextlib.contextmanager
def bullseye_mirror(root: Path) -> Iterator[RepoServer]:
    """bullseye and bullseye-security (MAIN, SECURITY) served on loopback."""
    write_apt_suite(root, "bullseye", MAIN + "\n")
    write_apt_suite(root, "bullseye-security", SECURITY + "\n", label="Debian-Security")
    with serve(root) as server:
        yield server


def bullseye_assets(factory: sessionmaker[Session], tmp_path: Path) -> tuple[int, int]:
    """The Debian advisories, web-1 with vulnerable packages and db-1 up to date."""
    import_debian(factory, tmp_path)
    web = new_asset(
        factory,
        "web-1",
        [
            libssl("1.1.1n-0+deb11u1"),
            deb("policykit-1", "0.105-31"),
            deb("bash", "5.1-2+deb11u1"),
            deb("tzdata", "2021a-1+deb11u8", arch="all"),
        ],
    )
    db = new_asset(factory, "db-1", [libssl("1.1.1n-0+deb11u4"), deb("bash", "5.1-2+deb11u2")])
    return web, db


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[RepoServer]:
    with bullseye_mirror(tmp_path / "www") as server:
        yield server


def add_debian_repos(factory: sessionmaker[Session], url: str) -> None:
    with transaction(factory) as session:
        for suite in ("bullseye", "bullseye-security"):
            repositories.add_repository(
                session, "test", name=suite, kind="apt", url=url, suite=suite, platform="debian"
            )
    results = repositories.sync(factory, "test")
    assert [r.status for r in results] == ["updated", "updated"]


def run_upkeep(factory: sessionmaker[Session]) -> upkeep.UpkeepRound:
    return upkeep.run_once(factory, timedelta(days=1), sync_repositories=False)


def asset_patches(factory: sessionmaker[Session], asset_id: int) -> dict[str, dict[str, Any]]:
    with transaction(factory) as session:
        rows = patches.list_patches(session, patches.PatchFilter(asset_id=asset_id))
    return {str(r["package"]): r for r in rows}


@pytest.fixture
def fleet(
    session_factory: sessionmaker[Session], tmp_path: Path, mirror: RepoServer
) -> tuple[int, int]:
    """Two bullseye assets with vulnerable packages, the advisories, the repositories."""
    web, db = bullseye_assets(session_factory, tmp_path)
    add_debian_repos(session_factory, mirror.url())
    run_upkeep(session_factory)
    return web, db


def test_sync_stores_the_repositories_and_patches_follow_apt_semantics(
    session_factory: sessionmaker[Session], fleet: tuple[int, int]
) -> None:
    web, db = fleet
    found = asset_patches(session_factory, web)
    # The highest candidate across both suites, as apt would pick it.
    assert {
        k: (v["installed_version"], v["target_version"], v["classification"])
        for k, v in found.items()
    } == {
        "libssl1.1": ("1.1.1n-0+deb11u1", "1.1.1n-0+deb11u4", "security"),
        "policykit-1": ("0.105-31", "0.105-31+deb11u1", "security"),
        "bash": ("5.1-2+deb11u1", "5.1-2+deb11u2", "bugfix"),
        "tzdata": ("2021a-1+deb11u8", "2024a-0+deb11u1", "bugfix"),
    }
    # The patches name the findings they close: all six openssl CVEs, pwnkit.
    assert set(found["libssl1.1"]["closes"]) == {
        "CVE-2022-2068",
        "CVE-2022-2097",
        "CVE-2022-4304",
        "CVE-2022-4450",
        "CVE-2023-0215",
        "CVE-2023-0286",
    }
    assert found["policykit-1"]["closes"] == ["CVE-2021-4034"]
    assert float(found["libssl1.1"]["risk_score"]) > 0
    assert found["bash"]["closes"] == []
    assert found["libssl1.1"]["reboot_required"] is False
    # db-1 is up to date: nothing available.
    assert asset_patches(session_factory, db) == {}
    # One patch row per update, shared by assets.
    with transaction(session_factory) as session:
        assert session.execute(select(Patch.package_name)).scalars().all().count("libssl1.1") == 1


def finding_risks(factory: sessionmaker[Session], asset_id: int, package: str) -> list[float]:
    with transaction(factory) as session:
        return sorted(
            session.execute(
                select(Finding.risk_score).where(
                    Finding.asset_id == asset_id,
                    Finding.package_name == package,
                    Finding.status == "open",
                )
            ).scalars(),
            reverse=True,
        )


def test_a_patch_scores_the_risk_it_removes_by_the_configured_weights(
    session_factory: sessionmaker[Session], fleet: tuple[int, int]
) -> None:
    """The riskiest finding a patch closes plus a bounded share of the others'
    (patch_extra_share, patch_extra_cap), each part shown next to the score."""
    web, _ = fleet
    risks = finding_risks(session_factory, web, "libssl1.1")
    assert len(risks) == 6
    defaults = DEFAULT_WEIGHTS
    expected = round(
        min(
            100.0,
            risks[0] + min(defaults.patch_extra_cap, defaults.patch_extra_share * sum(risks[1:])),
        ),
        1,
    )
    libssl = asset_patches(session_factory, web)["libssl1.1"]
    assert libssl["risk_score"] == expected > risks[0]
    assert libssl["risk"]["score"] == expected
    parts = {c["name"]: c for c in libssl["risk"]["components"]}
    assert set(parts) == {"Highest finding", "Additional findings"}
    assert parts["Additional findings"]["value"] == "5"

    # Weights changed: no share of the other findings. The next round re-scores.
    with transaction(session_factory) as session:
        changed = defaults.as_dict() | {"patch_extra_share": 0.0}
        priorities.set_risk_weights(session, "alice", changed)
        findings_service.mark_all_for_new_weights(session)
    run_upkeep(session_factory)
    rescored = asset_patches(session_factory, web)["libssl1.1"]
    assert rescored["risk_score"] == rescored["risk"]["score"] == risks[0]
    with transaction(session_factory) as session:
        summary = patches.patch_summary(session, patches.get_patch(session, libssl["id"]))
    (on_web,) = [a for a in summary["assets"] if a["asset_id"] == web]
    assert on_web["risk"]["score"] == summary["risk_score"] == risks[0]


def test_upgrading_applies_the_patch(
    session_factory: sessionmaker[Session], fleet: tuple[int, int]
) -> None:
    web, _ = fleet
    set_inventory(
        session_factory,
        web,
        [
            libssl("1.1.1n-0+deb11u4"),
            deb("policykit-1", "0.105-31"),
            deb("bash", "5.1-2+deb11u1"),
            deb("tzdata", "2021a-1+deb11u8", arch="all"),
        ],
    )
    run_upkeep(session_factory)
    assert "libssl1.1" not in asset_patches(session_factory, web)
    with transaction(session_factory) as session:
        applied = patches.list_patches(session, patches.PatchFilter(asset_id=web, status="applied"))
    assert [r["package"] for r in applied] == ["libssl1.1"]


def test_failed_sync_keeps_the_last_good_data(
    session_factory: sessionmaker[Session], fleet: tuple[int, int], mirror: RepoServer
) -> None:
    # The mirror now serves a truncated index: it no longer matches its Release file.
    for name in ("Packages", "Packages.gz", "Packages.xz"):
        mirror.cut.add(f"/dists/bullseye/main/binary-amd64/{name}")
    [result] = repositories.sync(session_factory, "test", ["bullseye"], force=True)
    assert result.status == "failed"
    assert result.error
    with transaction(session_factory) as session:
        view = repositories.get_repository(session, "bullseye")
        assert view.last_error == result.error
        assert view.package_count == 3
        kept = session.execute(select(RepositoryPackage.name)).scalars().all()
    assert sorted(kept) == ["bash", "libssl1.1", "libssl1.1", "policykit-1", "tzdata"]


def test_unreachable_repository_fails_clearly(session_factory: sessionmaker[Session]) -> None:
    with transaction(session_factory) as session:
        repositories.add_repository(
            session, "test", name="down", kind="apt", url="http://127.0.0.1:9/debian", suite="x"
        )
    [result] = repositories.sync(session_factory, "test")
    assert result.status == "failed"
    assert "127.0.0.1:9" in (result.error or "")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "yum", "url": "http://x/", "suite": None}, "unknown repository type"),
        ({"kind": "apt", "url": "ftp://x/", "suite": "s"}, "http://"),
        ({"kind": "apt", "url": "http://x/", "suite": None}, "needs --suite"),
        ({"kind": "apt", "url": "http://x/", "suite": "a b"}, "invalid suite"),
        ({"kind": "rpm", "url": "http://x/", "suite": "s"}, "apply to apt"),
    ],
)
def test_bad_repository_definitions_are_refused(
    session_factory: sessionmaker[Session], fields: dict[str, str | None], message: str
) -> None:
    with transaction(session_factory) as session, pytest.raises(InvalidInput, match=message):
        repositories.add_repository(session, "test", name="bad", **fields)  # type: ignore[arg-type]
    with transaction(session_factory) as session:
        assert repositories.list_repositories(session) == []


def patch_id(factory: sessionmaker[Session], package: str) -> int:
    with transaction(factory) as session:
        return session.execute(select(Patch.id).where(Patch.package_name == package)).scalar_one()


def test_manual_approval_with_four_eyes(
    session_factory: sessionmaker[Session], fleet: tuple[int, int]
) -> None:
    pid = patch_id(session_factory, "libssl1.1")
    with transaction(session_factory) as session:
        approvals.act(session, ALICE, pid, "request")
    with transaction(session_factory) as session, pytest.raises(ApproverRequired):
        approvals.act(session, OPERATOR, pid, "approve")
    with transaction(session_factory) as session, pytest.raises(FourEyesViolation):
        approvals.act(session, ALICE, pid, "approve")
    with transaction(session_factory) as session:
        view = approvals.act(session, BOB, pid, "approve", "tested in the lab")
        assert view["state"] == "approved"
        assert view["decided_by"] == "user:bob"
        approvals.ensure_deployable(session, pid, None)
        events = (
            session.execute(
                select(AuditEvent.action).where(
                    AuditEvent.target_type == "patch", AuditEvent.target_id == str(pid)
                )
            )
            .scalars()
            .all()
        )
    assert events == ["approval.request", "approval.approve"]


def test_declined_patch_is_blocked_until_lifted(
    session_factory: sessionmaker[Session], fleet: tuple[int, int]
) -> None:
    pid = patch_id(session_factory, "bash")
    with transaction(session_factory) as session:
        approvals.act(session, ALICE, pid, "decline", "breaks our login scripts")
    with (
        transaction(session_factory) as session,
        pytest.raises(NotDeployable, match="login scripts"),
    ):
        approvals.ensure_deployable(session, pid, None)
    # A rule that approves everything does not beat the decline.
    with transaction(session_factory) as session:
        group = groups.create_static(session, "test", "all", [fleet[0]])
        approvals.add_rule(session, "test", group.id, {"name": "everything"})
        with pytest.raises(NotDeployable):
            approvals.ensure_deployable(session, pid, group.id)
        approvals.act(session, ALICE, pid, "lift", "fixed the scripts")
        approvals.ensure_deployable(session, pid, group.id)  # the rule approves now


def test_rules_decide_per_group_and_wait_for_the_release_delay(
    session_factory: sessionmaker[Session], fleet: tuple[int, int]
) -> None:
    web, _ = fleet
    ssl, pk, bash = (patch_id(session_factory, n) for n in ("libssl1.1", "policykit-1", "bash"))
    with transaction(session_factory) as session:
        group = groups.create_static(session, "test", "web", [web])
        approvals.add_rule(
            session,
            "test",
            group.id,
            {"name": "security", "classifications": ["security"], "exclude": ["policykit-*"]},
        )
        assert approvals.deployable_state(session, ssl, group.id) == "approved"
        assert approvals.deployable_state(session, pk, group.id) is None
        assert approvals.deployable_state(session, bash, group.id) is None
        decision = approvals.approval_view(session, patches.get_patch(session, ssl))[
            "rule_decisions"
        ]
        assert decision[0]["rule"] == "security"
        assert any("classification" in r for r in decision[0]["reasons"])
        # A delay after release: the repository's Release date is 10 May 2025.
        approvals.add_rule(
            session,
            "test",
            group.id,
            {
                "name": "bugfix-later",
                "classifications": ["bugfix"],
                "days_after_release": 3,
                "timezone": "Europe/Berlin",
            },
        )
        early = datetime(2025, 5, 12, 21, 59, 59, tzinfo=UTC)  # 23:59:59 in Berlin, day 2
        approvals.evaluate_group(session, group.id, now=early)
        view = approvals.approval_view(session, patches.get_patch(session, bash))
        assert view["rule_decisions"][0]["outcome"] == "wait"
        assert view["rule_decisions"][0]["eligible_at"] == "2025-05-12T22:00:00+00:00"
        approvals.evaluate_group(session, group.id, now=early + timedelta(seconds=1))
        assert approvals.deployable_state(session, bash, group.id) == "approved"


def test_unknown_package_pattern_in_a_rule_is_refused(
    session_factory: sessionmaker[Session], fleet: tuple[int, int]
) -> None:
    with transaction(session_factory) as session:
        group = groups.create_static(session, "test", "g", [fleet[0]])
    with transaction(session_factory) as session, pytest.raises(InvalidPattern):
        approvals.add_rule(session, "test", group.id, {"name": "bad", "include": ["^lib.*$"]})
    with transaction(session_factory) as session:
        assert approvals.list_rules(session) == []


def open_statuses(factory: sessionmaker[Session], asset_id: int) -> dict[str, str]:
    with transaction(factory) as session:
        rows = session.execute(select(Finding).where(Finding.asset_id == asset_id)).scalars()
        return {f.vulnerability_id: f.status for f in rows}


def accept_policykit(session: Session, policykit: int) -> dict[str, Any]:
    """A 30-day exception for the policykit-1 patch."""
    return exceptions.add(
        session,
        "user:alice",
        "patch",
        policykit,
        "pkexec is removed by our hardening role",
        datetime.now(UTC) + timedelta(days=30),
    )


def test_exceptions_leave_the_figures_and_reopen_when_expired(
    session_factory: sessionmaker[Session], fleet: tuple[int, int]
) -> None:
    web, _ = fleet
    policykit = patch_id(session_factory, "policykit-1")
    with transaction(session_factory) as session:
        before = exceptions.compliance(session)
        accepted = accept_policykit(session, policykit)
        after = exceptions.compliance(session)
    assert open_statuses(session_factory, web)["CVE-2021-4034"] == "excepted"
    assert after["excepted_findings"] == before["excepted_findings"] + 1
    assert after["open_findings"] == before["open_findings"] - 1
    # It expires: the finding reopens and the expiry is reported once.
    with transaction(session_factory) as session:
        later = datetime.now(UTC) + timedelta(days=31)
        assert exceptions.expire(session, later) == [accepted["id"]]
        assert exceptions.expire(session, later) == []
        reported = session.execute(
            select(AuditEvent.action).where(AuditEvent.target_type == "risk_acceptance")
        ).scalars()
        assert list(reported) == ["exception.add", "exception.expired"]
    assert open_statuses(session_factory, web)["CVE-2021-4034"] == "open"


def test_an_asset_that_comes_to_need_an_excepted_patch_is_covered_in_one_round(
    session_factory: sessionmaker[Session], fleet: tuple[int, int]
) -> None:
    _, db = fleet
    policykit = patch_id(session_factory, "policykit-1")
    with transaction(session_factory) as session:
        accept_policykit(session, policykit)
    held = [libssl("1.1.1n-0+deb11u4"), deb("bash", "5.1-2+deb11u2")]
    set_inventory(session_factory, db, [*held, deb("policykit-1", "0.105-31")])
    run_upkeep(session_factory)  # its findings first, then its patches: one round
    assert open_statuses(session_factory, db)["CVE-2021-4034"] == "excepted"
    with transaction(session_factory) as session:
        assert exceptions.compliance(session)["excepted_findings"] == 2  # web's and db's


@pytest.mark.parametrize(
    ("justification", "expires_in", "message"),
    [
        ("", timedelta(days=3), "justification is required"),
        ("because we can", timedelta(days=-1), "not in the future"),
        ("because we can", timedelta(days=400), "more than 365 days"),
    ],
)
def test_bad_exceptions_change_nothing(
    session_factory: sessionmaker[Session],
    fleet: tuple[int, int],
    justification: str,
    expires_in: timedelta,
    message: str,
) -> None:
    with transaction(session_factory) as session, pytest.raises(InvalidPolicy, match=message):
        exceptions.add(
            session, "user:alice", "asset", fleet[0], justification, datetime.now(UTC) + expires_in
        )
    with transaction(session_factory) as session:
        assert exceptions.list_acceptances(session) == []
    assert "excepted" not in open_statuses(session_factory, fleet[0]).values()


def test_exception_for_a_missing_target(session_factory: sessionmaker[Session]) -> None:
    with transaction(session_factory) as session, pytest.raises(NotFound):
        exceptions.add(
            session,
            "u",
            "finding",
            999,
            "accepted for the migration window",
            datetime.now(UTC) + timedelta(days=3),
        )


def test_baseline_drift_and_version_sprawl(
    session_factory: sessionmaker[Session], fleet: tuple[int, int]
) -> None:
    web, db = fleet
    with transaction(session_factory) as session:
        group = groups.create_static(session, "test", "servers", [web, db])
        baselines.set_entry(session, "test", group.id, "libssl1.1", "1.1.1n-0+deb11u4", "minimum")
        baselines.set_entry(
            session, "test", group.id, "bash", "5.1-2+deb11u2", "desired", "debian:11"
        )
        baselines.set_entry(session, "test", group.id, "nginx", "1.18.0-6.1", "minimum")
        rows = baselines.drift_report(session, group.id)
        sprawl = baselines.version_sprawl(session, group.id)
    by_key = {(r["hostname"], r["package"]): r["status"] for r in rows}
    assert by_key == {
        ("db-1", "nginx"): "missing",
        ("web-1", "bash"): "differs",
        ("web-1", "libssl1.1"): "below_minimum",
        ("web-1", "nginx"): "missing",
    }
    top = {s["package"]: s for s in sprawl}
    assert top["libssl1.1"]["versions"] == 2
    assert top["libssl1.1"]["assets"] == 2
    assert top["policykit-1"]["versions"] == 1


def test_a_group_that_limits_a_repository_cannot_be_deleted(
    session_factory: sessionmaker[Session],
) -> None:
    with transaction(session_factory) as session:
        groups.create_static(session, "test", "lab")
        repositories.add_repository(
            session, "test", name="lab-only", kind="rpm", url="http://127.0.0.1:9/", group="lab"
        )
    with transaction(session_factory) as session, pytest.raises(Conflict, match="lab-only"):
        groups.delete(session, "test", "lab")
    with transaction(session_factory) as session:
        assert groups.get(session, "lab").name == "lab"
