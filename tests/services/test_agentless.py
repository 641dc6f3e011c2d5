"""Agentless assets end to end against a real OpenSSH server on loopback:
first collection trusts the host key, later ones require the same key."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from patchwarden.errors import Conflict, HostKeyMismatch
from patchwarden.services import agentless, audit
from patchwarden.storage.db import transaction
from patchwarden.storage.tables import Asset, InstalledPackage, SshTarget
from tests.sshd import SshServer, sshd_unavailable


@pytest.fixture
def server(tmp_path: Path) -> Iterator[SshServer]:
    reason = sshd_unavailable()
    if reason is not None:
        pytest.skip(reason)
    with SshServer(tmp_path / "sshd") as running:
        yield running


def dpkg_installed() -> set[tuple[str, str, str]]:
    out = subprocess.run(
        [
            "dpkg-query",
            "-W",
            "-f",
            "${db:Status-Abbrev}\t${Package}\t${Version}\t${Architecture}\n",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {tuple(line.split("\t")[1:]) for line in out.splitlines() if line.startswith("ii")}  # type: ignore[misc]


def test_add_collect_and_changed_host_key(
    server: SshServer, session_factory: sessionmaker[Session]
) -> None:
    destination = f"{server.username}@{server.host}"
    added = agentless.add_ssh_asset(
        session_factory, "user:tester", destination, server.port, str(server.client_key_path)
    )
    assert added.first_use
    assert added.host_key_fingerprint == server.host_key_fingerprint()
    with transaction(session_factory) as session:
        asset = session.get(Asset, added.asset_id)
        assert asset is not None and asset.source == "ssh"
        packages = session.execute(
            select(InstalledPackage.name, InstalledPackage.version, InstalledPackage.arch).where(
                InstalledPackage.asset_id == added.asset_id,
                InstalledPackage.removed_at.is_(None),
                InstalledPackage.status == "installed",
            )
        ).all()
        assert {tuple(p) for p in packages} == dpkg_installed()
        target = session.execute(select(SshTarget)).scalar_one()
        assert target.host_key_fingerprint == server.host_key_fingerprint()
        assert audit.list_events(session, limit=1)[0].action == "asset.ssh_add"

    with pytest.raises(Conflict, match="already asset"):
        agentless.add_ssh_asset(
            session_factory, "user:tester", destination, server.port, str(server.client_key_path)
        )

    again = agentless.collect_asset(session_factory, "user:tester", added.asset_id)
    assert not again.first_use
    assert again.added == again.removed == again.changed == 0

    server.rotate_host_key()
    with transaction(session_factory) as session:
        before = session.execute(select(func.count()).select_from(InstalledPackage)).scalar_one()
    with pytest.raises(HostKeyMismatch):
        agentless.collect_asset(session_factory, "user:tester", added.asset_id)
    with transaction(session_factory) as session:
        after = session.execute(select(func.count()).select_from(InstalledPackage)).scalar_one()
        target = session.execute(select(SshTarget)).scalar_one()
        events = [e.action for e in audit.list_events(session)]
    assert after == before
    assert target.last_error and "host key" in target.last_error.lower()
    assert events[0] == "asset.ssh_host_key_mismatch"
