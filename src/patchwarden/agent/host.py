"""Where collectors read from and run commands: the local machine (or a sandbox
root on it) or, on the server side, a remote host over SSH.

Collectors only ever talk to a `Host`, so the same collector code serves the
agent and agentless collection.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Optional, Protocol, Sequence

# Fixed locale so command output parses the same everywhere.
COMMAND_ENV = {
    "LC_ALL": "C",
    "LANG": "C",
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
}


class CommandNotFound(Exception):
    """The program a collector needs is not installed on the host."""


class CommandResult:
    __slots__ = ("returncode", "stderr", "stdout")

    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr

    def __repr__(self) -> str:
        return "CommandResult(returncode=%d)" % self.returncode


class Host(Protocol):
    """What a collector may do on a host. Paths are absolute paths *inside* the
    host's root (for a sandbox root "/var/lib/dpkg/status" means
    ROOT/var/lib/dpkg/status)."""

    @property
    def root(self) -> str:
        """ "/" for the live system, otherwise the sandbox or image root."""
        ...

    @property
    def is_live(self) -> bool:
        """True when the host's running kernel and network belong to `root`."""
        ...

    def read_text(self, path: str) -> Optional[str]:
        """The file's text (UTF-8, invalid bytes replaced), or None if absent/unreadable."""
        ...

    def list_dir(self, path: str) -> Optional[Sequence[str]]:
        """Entry names of a directory, or None if absent/unreadable."""
        ...

    def which(self, program: str) -> Optional[str]:
        """Full path of `program` on the host that runs commands, or None."""
        ...

    def run(self, argv: Sequence[str], timeout: float = 120.0) -> CommandResult:
        """Run argv (never through a shell). Raises CommandNotFound."""
        ...


class LocalHost:
    """The machine the agent runs on, optionally looking at a sandbox root."""

    def __init__(self, root: str = "/") -> None:
        self._root = os.path.abspath(root)

    @property
    def root(self) -> str:
        return self._root

    @property
    def is_live(self) -> bool:
        return self._root == "/"

    def _path(self, path: str) -> str:
        return os.path.join(self._root, path.lstrip("/"))

    def read_text(self, path: str) -> Optional[str]:
        try:
            with open(self._path(path), "rb") as handle:
                return handle.read().decode("utf-8", errors="replace")
        except OSError:
            return None

    def list_dir(self, path: str) -> Optional[Sequence[str]]:
        try:
            return sorted(os.listdir(self._path(path)))
        except OSError:
            return None

    def which(self, program: str) -> Optional[str]:
        return shutil.which(program, path=COMMAND_ENV["PATH"])

    def run(self, argv: Sequence[str], timeout: float = 120.0) -> CommandResult:
        if not argv:
            raise ValueError("empty command")
        program = self.which(argv[0]) if "/" not in argv[0] else argv[0]
        if program is None:
            raise CommandNotFound(argv[0])
        try:
            completed = subprocess.run(
                [program, *argv[1:]],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=COMMAND_ENV,
                timeout=timeout,
                check=False,
            )
        except FileNotFoundError as exc:
            raise CommandNotFound(argv[0]) from exc
        return CommandResult(
            completed.returncode,
            completed.stdout.decode("utf-8", errors="replace"),
            completed.stderr.decode("utf-8", errors="replace"),
        )
