"""Agentless collection: the agent's collectors run against hosts reached over SSH."""

from patchwarden.agentless.ssh import (
    HostKeyChanged,
    KnownHostKey,
    SshConnection,
    SshHost,
    SshTarget,
    collect_over_ssh,
    connect,
    parse_destination,
)

__all__ = [
    "HostKeyChanged",
    "KnownHostKey",
    "SshConnection",
    "SshHost",
    "SshTarget",
    "collect_over_ssh",
    "connect",
    "parse_destination",
]
