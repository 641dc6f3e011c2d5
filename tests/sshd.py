"""A real OpenSSH server for tests, listening on 127.0.0.1 only.

`SshServer` runs ``/usr/sbin/sshd -D -e`` with its own configuration, host key,
authorized_keys file and log in a private directory, and stops it at the end::

    with SshServer(tmp_path) as server:
        ...  # connect to server.host:server.port as server.username
        server.rotate_host_key()  # same port, new host key (restarts sshd)

Only public-key authentication is enabled. The client key pair is generated
with ssh-keygen; `generate_client_key` makes more (authorized or not). Use
`sshd_unavailable()` to skip tests with a clear reason where sshd cannot run.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

SSHD = Path("/usr/sbin/sshd")
PRIVSEP_DIR = Path("/run/sshd")
LISTEN_HOST = "127.0.0.1"
START_TIMEOUT = 15.0


def sshd_unavailable() -> str | None:
    """None when an sshd can be started here, else why not."""
    if not SSHD.is_file():
        return f"OpenSSH server not installed ({SSHD} absent; apt-get install openssh-server)"
    if shutil.which("ssh-keygen") is None:
        return "ssh-keygen not found (apt-get install openssh-client)"
    if not PRIVSEP_DIR.is_dir():
        if os.geteuid() != 0:
            return f"sshd needs its privilege separation directory {PRIVSEP_DIR} (create as root)"
        PRIVSEP_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LISTEN_HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def keygen(path: Path, key_type: str = "ed25519", comment: str = "patchwarden-test") -> Path:
    """A new unencrypted key pair at `path` (private) and `path`.pub; returns `path`."""
    for stale in (path, path.with_name(path.name + ".pub")):
        stale.unlink(missing_ok=True)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", key_type, "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
        capture_output=True,
    )
    return path


def fingerprint(public_key_path: Path) -> str:
    """``SHA256:...`` as ``ssh-keygen -lf`` prints it."""
    result = subprocess.run(
        ["ssh-keygen", "-l", "-E", "sha256", "-f", str(public_key_path)],
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout.split()[1]


class SshServer:
    """One sshd on 127.0.0.1 with everything it needs under `workdir`."""

    def __init__(
        self,
        workdir: Path,
        *,
        username: str | None = None,
        host_key_types: Sequence[str] = ("ed25519",),
        sftp: bool = True,
    ) -> None:
        if not host_key_types:
            raise ValueError("sshd needs at least one host key type")
        self.workdir = workdir
        self.sftp = sftp
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.host = LISTEN_HOST
        self.port = _free_port()
        self.username = username or getpass.getuser()
        self.config_path = workdir / "sshd_config"
        # One host key per type; the first is `host_key_path`.
        self.host_key_paths = {
            key_type: workdir / f"ssh_host_{key_type}_key" for key_type in host_key_types
        }
        self.host_key_path = self.host_key_paths[host_key_types[0]]
        self.authorized_keys_path = workdir / "authorized_keys"
        self.log_path = workdir / "sshd.log"
        self.pid_path = workdir / "sshd.pid"
        self._process: subprocess.Popen[bytes] | None = None
        self._generation = 0
        self._generate_host_keys("patchwarden-test-host")
        self.authorized_keys_path.write_text("")
        self.authorized_keys_path.chmod(0o600)
        self.client_key_path = self.generate_client_key("id_ed25519", authorize=True)

    # ------------------------------------------------------------------ keys

    def _generate_host_keys(self, comment: str) -> None:
        for key_type, path in self.host_key_paths.items():
            keygen(path, key_type=key_type, comment=comment)

    def host_public_key(self, key_type: str | None = None) -> str:
        """``TYPE BASE64`` of the current host key of `key_type` (default: the first)."""
        path = self.host_key_paths[key_type] if key_type else self.host_key_path
        fields = path.with_name(path.name + ".pub").read_text().split()
        return f"{fields[0]} {fields[1]}"

    def host_key_fingerprint(self, key_type: str | None = None) -> str:
        path = self.host_key_paths[key_type] if key_type else self.host_key_path
        return fingerprint(path.with_name(path.name + ".pub"))

    def generate_client_key(self, name: str, *, authorize: bool, key_type: str = "ed25519") -> Path:
        """A client key pair in the work directory, added to authorized_keys if asked."""
        path = keygen(self.workdir / name, key_type=key_type, comment=f"patchwarden-test-{name}")
        if authorize:
            public = path.with_name(path.name + ".pub").read_text().strip()
            with self.authorized_keys_path.open("a") as handle:
                handle.write(public + "\n")
        return path

    def rotate_host_key(self) -> None:
        """Give the server a new host key (as after a reinstall) and restart it on
        the same port."""
        self.stop()
        self._generate_host_keys("patchwarden-test-host-rotated")
        self.start()

    # --------------------------------------------------------------- process

    def _write_config(self) -> None:
        lines = [
            f"ListenAddress {self.host}",
            f"Port {self.port}",
            *(f"HostKey {path}" for path in self.host_key_paths.values()),
            f"PidFile {self.pid_path}",
            f"AuthorizedKeysFile {self.authorized_keys_path}",
            # The work directory sits under the world-writable /tmp.
            "StrictModes no",
            f"AllowUsers {self.username}",
            "AuthenticationMethods publickey",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            "UsePAM no",
            "PermitUserEnvironment no",
            "X11Forwarding no",
            "AllowTcpForwarding no",
            "PrintMotd no",
            "LogLevel VERBOSE",
        ]
        if self.sftp:
            lines.append("Subsystem sftp internal-sftp")
        self.config_path.write_text("\n".join(lines) + "\n")

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log(self) -> str:
        """Everything sshd logged, all starts included."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_since_start(self) -> str:
        """What sshd logged since it was last started."""
        return self.log().rpartition(self._marker())[2]

    def _marker(self) -> str:
        return f"--- start {self._generation} ---\n"

    def start(self) -> None:
        if self.running:
            return
        reason = sshd_unavailable()
        if reason is not None:
            raise RuntimeError(reason)
        self._write_config()
        self._generation += 1
        with self.log_path.open("a") as log:
            log.write(self._marker())
            log.flush()
            # sshd must be started by absolute path (it re-executes itself).
            self._process = subprocess.Popen(
                [str(SSHD), "-D", "-e", "-f", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        self._wait_listening()

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        wanted = f"Server listening on {self.host} port {self.port}"
        while time.monotonic() < deadline:
            if wanted in self.log_since_start():
                return
            if self._process is not None and self._process.poll() is not None:
                break
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"sshd did not start on {self.host}:{self.port}; its log:\n{self.log()}")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)

    def __enter__(self) -> SshServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
