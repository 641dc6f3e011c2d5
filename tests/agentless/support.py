"""Helpers shared by the agentless tests and their fixtures."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from patchwarden.agentless.ssh import SshTarget
from tests.sshd import SshServer

# `sshd_factory(host_key_types=..., sftp=...)` starts a private server.
SshdFactory = Callable[..., SshServer]


def target_for(server: SshServer, key_path: Path | None = None) -> SshTarget:
    """Where to reach `server`, authenticating with its client key (or `key_path`)."""
    return SshTarget(
        host=server.host,
        port=server.port,
        username=server.username,
        key_path=server.client_key_path if key_path is None else key_path,
    )
