from __future__ import annotations

import threading
from pathlib import Path

import pytest

from patchwarden.agent.client import AgentClient
from patchwarden.agent.errors import CredentialRefusedError, ServerError
from patchwarden.agent.host import LocalHost
from patchwarden.agent.runner import CycleResult, jittered, run_cycle, run_forever
from patchwarden.agent.state import StateDir
from patchwarden.protocol.v1 import package_key
from tests.agent.fake_server import FakeServer
from tests.agent.fakes import DPKG_STATUS, make_sandbox_root, write_file

NEW_PACKAGE = """
Package: curl
Status: install ok installed
Maintainer: Alessandro Ghedini <ghedo@debian.org>
Architecture: amd64
Version: 7.88.1-10+deb12u5
Description: command line tool for transferring data with URL syntax
"""


class Setup:
    def __init__(self, server: FakeServer, tmp_path: Path) -> None:
        self.server = server
        self.root = make_sandbox_root(tmp_path / "root")
        self.host = LocalHost(str(self.root))
        self.state = StateDir(str(tmp_path / "state"))
        self.state.ensure()
        answer = AgentClient(server.url).enroll("good-token", "sandbox-host", None)
        self.asset_id = answer["asset_id"]
        self.client = AgentClient(server.url, credential=answer["credential"])

    def cycle(self) -> CycleResult:
        return run_cycle(self.host, self.state, self.client, self.asset_id)

    def server_inventory(self) -> set[tuple[str, str, str, str]]:
        return set(self.server.only_agent().inventory)


@pytest.fixture
def setup(server: FakeServer, tmp_path: Path) -> Setup:
    return Setup(server, tmp_path)


def test_full_then_delta(setup: Setup) -> None:
    first = setup.cycle()
    assert (first.seq, first.kind, first.ack_seq, first.packages) == (1, "full", 1, 6)
    report = setup.server.reports[0]
    assert report["kind"] == "full"
    assert report["base_seq"] is None
    assert "added" not in report
    assert report["facts"]["hostname"] == "sandbox-host"
    assert {n["collector"] for n in report["collector_notes"]} >= {"dpkg", "rpm", "apk"}
    collected = {package_key(p) for p in report["packages"]}
    assert setup.server_inventory() == collected

    # Nothing changed: the delta is empty but still sent (it is the check-in).
    second = setup.cycle()
    assert (second.seq, second.kind, second.added, second.removed) == (2, "delta", 0, 0)
    report = setup.server.reports[1]
    assert (report["base_seq"], report["added"], report["removed"]) == (1, [], [])
    assert "packages" not in report

    # A package appears, another is upgraded.
    status = DPKG_STATUS.replace("Version: 2024a-0+deb12u1", "Version: 2024b-0+deb12u1")
    write_file(setup.root, "/var/lib/dpkg/status", status + NEW_PACKAGE)
    third = setup.cycle()
    assert (third.kind, third.added, third.removed) == ("delta", 2, 1)
    report = setup.server.reports[2]
    assert report["base_seq"] == 2
    assert sorted((p["name"], p["version"]) for p in report["added"]) == [
        ("curl", "7.88.1-10+deb12u5"),
        ("tzdata", "2024b-0+deb12u1"),
    ]
    assert [(p["name"], p["version"]) for p in report["removed"]] == [("tzdata", "2024a-0+deb12u1")]
    # The server's copy, rebuilt from full + deltas, equals what we collected.
    snapshot = setup.state.load_snapshot()
    assert snapshot is not None
    assert snapshot.ack_seq == 3
    assert setup.server_inventory() == {package_key(p) for p in snapshot.packages}


def test_409_makes_the_agent_send_a_full_report_in_the_same_run(setup: Setup) -> None:
    setup.cycle()
    setup.server.force_full_next = True
    result = setup.cycle()
    assert (result.kind, result.seq, result.ack_seq) == ("full", 3, 3)
    assert [r["kind"] for r in setup.server.reports] == ["full", "delta", "full"]
    assert [r["seq"] for r in setup.server.reports] == [1, 2, 3]  # 2 was used up
    assert setup.server.responses == [200, 409, 200]


def test_lost_snapshot_means_full_report(setup: Setup) -> None:
    setup.cycle()
    setup.state.forget_snapshot()
    assert setup.cycle().kind == "full"


def test_revoked_credential(setup: Setup) -> None:
    setup.cycle()
    setup.server.only_agent().revoked = True
    with pytest.raises(CredentialRefusedError):
        setup.cycle()
    snapshot = setup.state.load_snapshot()
    assert snapshot is not None
    assert snapshot.ack_seq == 1  # nothing stored for the refused report


def test_server_error_keeps_the_old_snapshot(setup: Setup) -> None:
    setup.cycle()
    setup.server.fail_next_with = 503
    with pytest.raises(ServerError) as caught:
        setup.cycle()
    assert caught.value.status == 503
    # Next cycle: a delta against the still-acknowledged seq 1, with a new seq.
    result = setup.cycle()
    assert (result.kind, result.seq) == ("delta", 3)
    assert setup.server.reports[-1]["base_seq"] == 1


def test_run_forever_retries_and_stops(setup: Setup) -> None:
    stop = threading.Event()
    setup.server.fail_next_with = 500

    def watch() -> None:
        while len(setup.server.responses) < 3:
            stop.wait(0.01)
        stop.set()

    watcher = threading.Thread(target=watch)
    watcher.start()
    run_forever(setup.host, setup.state, setup.client, setup.asset_id, stop, interval=0.01)
    watcher.join()
    assert setup.server.responses[:3] == [500, 200, 200]  # the failure did not end the loop


def test_run_forever_stops_on_refusal(setup: Setup) -> None:
    setup.server.only_agent().revoked = True
    with pytest.raises(CredentialRefusedError):
        run_forever(
            setup.host, setup.state, setup.client, setup.asset_id, threading.Event(), interval=0.01
        )


def test_jitter_stays_within_ten_percent() -> None:
    assert jittered(100, lambda low, high: low) == pytest.approx(90)
    assert jittered(100, lambda low, high: high) == pytest.approx(110)
    for _ in range(200):
        assert 90 <= jittered(100) <= 110
