from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

import pytest

from patchwarden.agent.errors import NotEnrolledError, StateError
from patchwarden.agent.state import Credentials, Snapshot, StateDir, write_atomic

CREDS = Credentials(
    server="https://pw.example.com",
    agent_id=7,
    asset_id=42,
    credential="s3cret",
    ca_file="/etc/ssl/pw-ca.pem",
    report_interval=600,
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_credentials_are_private_and_round_trip(tmp_path: Path) -> None:
    state = StateDir(str(tmp_path / "state"))
    state.save_credentials(CREDS)
    assert _mode(tmp_path / "state") == 0o700
    assert _mode(tmp_path / "state" / "credentials.json") == 0o600
    assert StateDir(str(tmp_path / "state")).load_credentials() == CREDS


def test_created_0600_even_with_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        StateDir(str(tmp_path / "s")).save_credentials(CREDS)
    finally:
        os.umask(old)
    assert _mode(tmp_path / "s" / "credentials.json") == 0o600
    assert _mode(tmp_path / "s") == 0o700


def test_loose_permissions_are_fixed_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = StateDir(str(tmp_path))
    state.save_credentials(CREDS)
    path = tmp_path / "credentials.json"
    os.chmod(path, 0o644)
    with caplog.at_level(logging.WARNING, logger="patchwarden.agent"):
        assert state.load_credentials() == CREDS
    assert _mode(path) == 0o600
    assert "readable by others" in caplog.text


def test_not_enrolled(tmp_path: Path) -> None:
    with pytest.raises(NotEnrolledError, match="enroll"):
        StateDir(str(tmp_path)).load_credentials()


def test_corrupt_credentials(tmp_path: Path) -> None:
    (tmp_path / "credentials.json").write_text('{"server": "x", "agent_id": "seven"}')
    os.chmod(tmp_path / "credentials.json", 0o600)
    with pytest.raises(StateError, match="corrupt"):
        StateDir(str(tmp_path)).load_credentials()


def test_seq_persists_and_increases(tmp_path: Path) -> None:
    state = StateDir(str(tmp_path))
    state.ensure()
    assert [state.next_seq() for _ in range(3)] == [1, 2, 3]
    assert StateDir(str(tmp_path)).next_seq() == 4  # a new process continues
    assert (tmp_path / "seq").read_text() == "4\n"
    assert _mode(tmp_path / "seq") == 0o600


def test_seq_never_falls_below_the_acknowledged_one(tmp_path: Path) -> None:
    state = StateDir(str(tmp_path))
    state.ensure()
    state.save_snapshot(Snapshot(ack_seq=41, packages=[], facts={}))
    assert state.next_seq() == 42  # seq file lost, snapshot still says 41


@pytest.mark.parametrize("content", ["garbage", "-3", "\u00b2", ""])
def test_corrupt_seq_is_refused(tmp_path: Path, content: str) -> None:
    (tmp_path / "seq").write_text(content)
    with pytest.raises(StateError, match="corrupt"):
        StateDir(str(tmp_path)).next_seq()


def test_snapshot_round_trip_and_damage(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    state = StateDir(str(tmp_path))
    state.ensure()
    assert state.load_snapshot() is None
    package: dict[str, str | None] = {
        "ecosystem": "deb",
        "name": "bash",
        "version": "5.2.15-2+b2",
        "arch": "amd64",
    }
    state.save_snapshot(Snapshot(ack_seq=3, packages=[package], facts={"hostname": "h"}))
    assert state.load_snapshot() == Snapshot(3, [package], {"hostname": "h"})
    assert json.loads((tmp_path / "inventory.json").read_text())["ack_seq"] == 3
    (tmp_path / "inventory.json").write_text("{truncated")
    with caplog.at_level(logging.WARNING, logger="patchwarden.agent"):
        assert state.load_snapshot() is None  # next report is a full one
    assert "full one" in caplog.text
    state.forget_snapshot()
    state.forget_snapshot()  # idempotent
    assert not (tmp_path / "inventory.json").exists()


def test_atomic_write_keeps_old_content_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "file"
    write_atomic(str(target), b"old\n")
    with pytest.raises(TypeError):
        write_atomic(str(target), "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # no temp file left
    write_atomic(str(target), b"new\n")
    assert target.read_bytes() == b"new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_one_process_at_a_time(tmp_path: Path) -> None:
    first, second = StateDir(str(tmp_path)), StateDir(str(tmp_path))
    with (
        first.lock(),
        pytest.raises(StateError, match="another patchwarden-agent"),
        second.lock(),
    ):
        pass
    with second.lock():  # released
        pass
