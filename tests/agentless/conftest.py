"""Fixtures for agentless tests: a real OpenSSH server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from patchwarden.agentless.ssh import SshConnection, SshHost, SshTarget, connect
from tests.agentless.support import SshdFactory, target_for
from tests.sshd import SshServer, sshd_unavailable


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    """One sshd for the whole session. Tests that restart it or change its keys
    use `sshd_factory` instead."""
    reason = sshd_unavailable()
    if reason is not None:
        pytest.skip(reason)
    with SshServer(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.fixture
def sshd_factory(tmp_path: Path) -> Iterator[SshdFactory]:
    """Start private sshd instances (keyword arguments go to `SshServer`); all
    are stopped at the end of the test."""
    reason = sshd_unavailable()
    if reason is not None:
        pytest.skip(reason)
    servers: list[SshServer] = []

    def start(*, host_key_types: Sequence[str] = ("ed25519",), sftp: bool = True) -> SshServer:
        server = SshServer(
            tmp_path / f"sshd{len(servers)}", host_key_types=host_key_types, sftp=sftp
        )
        servers.append(server)
        server.start()
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def target(sshd: SshServer) -> SshTarget:
    return target_for(sshd)


@pytest.fixture
def connection(target: SshTarget) -> Iterator[SshConnection]:
    with connect(target, None, timeout=10) as opened:
        yield opened


@pytest.fixture
def ssh_host(connection: SshConnection) -> SshHost:
    return SshHost(connection)
