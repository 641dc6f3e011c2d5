"""Agentless collection: the agent's `Host` interface over an SSH connection.

The server connects to a managed host with paramiko, verifies the host key by
trust on first use (TOFU), and hands the collectors an `SshHost`: files are read
and directories listed over SFTP, commands are run over SSH "exec" channels.

Host-key trust: `connect(target, known_key)` with `known_key=None` accepts the
key the server presents and returns it (``SshConnection.host_key``) so the
caller can store it; with a stored key, any other key is refused with
`HostKeyChanged` (a `HostKeyMismatch`) before we authenticate, so no credential
is ever offered to an impostor. ``~/.ssh/known_hosts`` is never consulted: the
stored key is the only source of trust.

Authentication is by key only: the key file given in the target, or else the
SSH agent and the default ``~/.ssh/id_*`` keys of the user running Patchwarden.
No password is ever sent or prompted for.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import ipaddress
import os
import re
import select
import shlex
import socket
import stat
import struct
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import paramiko

from patchwarden.agent.host import COMMAND_ENV, CommandNotFound, CommandResult
from patchwarden.agent.inventory import Inventory, collect_inventory
from patchwarden.errors import HostKeyMismatch, InvalidInput, RemoteError

__all__ = [
    "DEFAULT_COMMAND_TIMEOUT",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_MAX_OUTPUT_BYTES",
    "PROGRAM_PATH",
    "HostKeyChanged",
    "KnownHostKey",
    "SshConnection",
    "SshHost",
    "SshTarget",
    "collect_over_ssh",
    "connect",
    "parse_destination",
]

DEFAULT_CONNECT_TIMEOUT: Final = 30.0
DEFAULT_COMMAND_TIMEOUT: Final = 120.0
# A remote host is outside our control: cap what one command or file may send us.
DEFAULT_MAX_OUTPUT_BYTES: Final = 64 * 1024 * 1024

# Where `which` looks for programs: the same fixed PATH the local agent uses, so a
# collector finds the same programs over SSH as it does locally, whatever the remote
# account's own PATH is (a non-root login on Debian has no /usr/sbin in PATH).
PROGRAM_PATH: Final[tuple[str, ...]] = tuple(COMMAND_ENV["PATH"].split(":"))

# `env` by absolute path: it does not depend on the remote account's PATH.
_ENV_PROGRAM: Final = "/usr/bin/env"
_READ_CHUNK: Final = 65536

# --------------------------------------------------------------------------- target

# POSIX portable user names (letters, digits, '.', '_', '-'), not starting with '-',
# optionally ending in '$' (Samba machine accounts); 32 characters as on Linux.
_USER_RE: Final = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_.-]{0,30}\$?")
# One DNS label: letters, digits, hyphens (and '_', found in real internal names),
# no hyphen at either end.
_LABEL_RE: Final = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")


def _check_user(username: object) -> str:
    if not isinstance(username, str) or not _USER_RE.fullmatch(username):
        raise InvalidInput(
            f"invalid SSH user name {username!r}: use letters, digits, '.', '_' and '-' "
            "(not starting with '-'), at most 32 characters"
        )
    return username


def _check_host(host: object) -> str:
    """The host as paramiko wants it: a hostname or a bare IP literal."""
    if not isinstance(host, str) or not host:
        raise InvalidInput("SSH host must not be empty")
    literal = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return str(ipaddress.ip_address(literal))
    except ValueError:
        pass
    name = host[:-1] if host.endswith(".") else host
    labels = name.split(".")
    if (
        len(name) > 253
        or not all(_LABEL_RE.fullmatch(label) for label in labels)
        or labels[-1].isdigit()  # "10.1.2.300" or "12345" is no name and no IPv4 address
    ):
        hint = " (give the port separately)" if ":" in host and "]" not in host[-1:] else ""
        raise InvalidInput(
            f"invalid SSH host {host!r}: expected a host name (letters, digits, hyphens, "
            f"dot-separated) or an IPv4/IPv6 address{hint}"
        )
    return host


def _check_port(port: object) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise InvalidInput(f"invalid SSH port {port!r}: expected an integer from 1 to 65535")
    return port


@dataclass(frozen=True, kw_only=True)
class SshTarget:
    """Where and as whom to connect. Validated on construction (`InvalidInput`)."""

    host: str
    port: int = 22
    username: str
    key_path: Path | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "host", _check_host(self.host))
        _check_port(self.port)
        _check_user(self.username)
        if self.key_path is not None and not isinstance(self.key_path, Path):
            raise InvalidInput(f"SSH key path must be a path, not {self.key_path!r}")

    @property
    def address(self) -> str:
        """host:port for messages, with IPv6 literals bracketed."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.username}@{self.address}"


def parse_destination(
    destination: str, port: int = 22, key_path: str | os.PathLike[str] | None = None
) -> SshTarget:
    """Parse ``user@host`` (host: a name, an IPv4 address, or an IPv6 address with or
    without brackets). The user is required: the server's own account name means
    nothing on a managed host. Bad input raises `InvalidInput`."""
    if not isinstance(destination, str):
        raise InvalidInput(f"SSH destination must be text, not {type(destination).__name__}")
    user, at, host = destination.partition("@")
    if not at or not user or not host or "@" in host:
        raise InvalidInput(f"invalid SSH destination {destination!r}: expected USER@HOST")
    return SshTarget(
        host=host,
        port=_check_port(port),
        username=user,
        key_path=None if key_path is None else Path(key_path),
    )


# ------------------------------------------------------------------------ host keys

_KEY_TYPE_RE: Final = re.compile(r"[a-z0-9][a-z0-9@.+-]{0,63}")


def _fingerprint(blob: bytes) -> str:
    """OpenSSH's SHA-256 fingerprint: ``SHA256:`` + unpadded base64 of the digest."""
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii")
    return "SHA256:" + digest.rstrip("=")


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput(f"SSH host key data is not valid base64: {exc}") from exc


def _blob_key_type(blob: bytes) -> str | None:
    """The type name an SSH public key blob starts with (an SSH string)."""
    if len(blob) < 4:
        return None
    (length,) = struct.unpack(">I", blob[:4])
    if length > len(blob) - 4:
        return None
    try:
        return blob[4 : 4 + length].decode("ascii")
    except UnicodeDecodeError:
        return None


@dataclass(frozen=True)
class KnownHostKey:
    """A host's public SSH key as trusted on first use.

    ``key_type`` ("ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa" ...) and
    ``key_base64`` are the first two fields of an OpenSSH ``known_hosts`` or
    ``.pub`` line; ``fingerprint_sha256`` is what ``ssh-keygen -lf`` prints
    ("SHA256:..."). The three must agree (`InvalidInput` otherwise), so a stored
    value that was tampered with or corrupted is refused rather than trusted.
    """

    key_type: str
    key_base64: str
    fingerprint_sha256: str

    def __post_init__(self) -> None:
        if not isinstance(self.key_type, str) or not _KEY_TYPE_RE.fullmatch(self.key_type):
            raise InvalidInput(f"invalid SSH host key type {self.key_type!r}")
        blob = self.blob
        if _blob_key_type(blob) != self.key_type:
            raise InvalidInput(
                f"SSH host key data does not hold a {self.key_type} key "
                f"(it says {_blob_key_type(blob)!r})"
            )
        actual = _fingerprint(blob)
        if self.fingerprint_sha256 != actual:
            raise InvalidInput(
                f"SSH host key fingerprint {self.fingerprint_sha256!r} does not match "
                f"its key data ({actual})"
            )

    @property
    def blob(self) -> bytes:
        """The key in SSH wire format."""
        if not isinstance(self.key_base64, str):
            raise InvalidInput("SSH host key data must be base64 text")
        return _b64(self.key_base64)

    @classmethod
    def from_blob(cls, blob: bytes) -> KnownHostKey:
        key_type = _blob_key_type(blob)
        if key_type is None:
            raise InvalidInput("SSH host key data has no key type")
        return cls(key_type, base64.b64encode(blob).decode("ascii"), _fingerprint(blob))

    @classmethod
    def from_pkey(cls, key: paramiko.PKey) -> KnownHostKey:
        return cls.from_blob(key.asbytes())

    @classmethod
    def from_openssh(cls, line: str) -> KnownHostKey:
        """From ``TYPE BASE64 [COMMENT]`` (a ``.pub`` file or ``ssh-keyscan`` line
        without the host name)."""
        fields = line.split()
        if len(fields) < 2:
            raise InvalidInput("expected an OpenSSH public key: TYPE BASE64 [COMMENT]")
        blob = _b64(fields[1])
        return cls(fields[0], base64.b64encode(blob).decode("ascii"), _fingerprint(blob))

    def to_openssh(self) -> str:
        """``TYPE BASE64``, as in a ``.pub`` file."""
        return f"{self.key_type} {self.key_base64}"

    def same_key(self, other: KnownHostKey) -> bool:
        return self.key_type == other.key_type and self.blob == other.blob


class HostKeyChanged(HostKeyMismatch):
    """The host presented a key other than the one trusted on first use.

    Carries both keys so the caller can show them and, once an operator has checked
    the new fingerprint out of band, store ``presented`` as the trusted key."""

    def __init__(self, target: SshTarget, trusted: KnownHostKey, presented: KnownHostKey) -> None:
        super().__init__(
            f"SSH host key for {target.address} has changed: trusted "
            f"{trusted.key_type} {trusted.fingerprint_sha256}, but the host presented "
            f"{presented.key_type} {presented.fingerprint_sha256}. Nothing was sent to it. "
            "Either the host was reinstalled or re-keyed, or someone is intercepting the "
            "connection. Check the new fingerprint on the host itself (ssh-keygen -lf "
            "/etc/ssh/ssh_host_*_key.pub); if it matches, clear the stored host key for this "
            "asset so the next connection trusts the new key."
        )
        self.target = target
        self.trusted = trusted
        self.presented = presented


def _host_key_algorithms(key_type: str) -> tuple[str, ...]:
    """Host-key algorithms that verify a key of `key_type` (RSA keys sign with SHA-2)."""
    if key_type == "ssh-rsa":
        return ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa")
    return (key_type,)


class _TransportFactory:
    """Makes paramiko's Transport ask first for the host-key type we trust.

    A server usually has several host keys (ed25519, ecdsa, rsa); without this the
    negotiation could pick another type than the stored one and we would report a
    changed key that has not changed. If the server no longer has a key of the
    trusted type, negotiation picks another and the check reports the change."""

    def __init__(self, known_key: KnownHostKey | None) -> None:
        self._known_key = known_key

    def __call__(
        self,
        sock: Any,
        /,
        *,
        gss_kex: bool = False,
        gss_deleg_creds: bool = False,
        disabled_algorithms: Mapping[str, Iterable[str]] | None = None,
    ) -> paramiko.Transport:
        transport = paramiko.Transport(sock, disabled_algorithms=disabled_algorithms)
        if self._known_key is not None:
            options = transport.get_security_options()
            available = list(options.key_types)
            wanted = [
                name for name in _host_key_algorithms(self._known_key.key_type) if name in available
            ]
            if wanted:
                options.key_types = wanted + [name for name in available if name not in wanted]
        return transport


class _TrustOnFirstUse(paramiko.MissingHostKeyPolicy):
    """Runs after key exchange and before authentication, on every connection (the
    client's own host-key store is kept empty). Accepts the presented key when none
    is trusted yet, otherwise requires it to be the trusted one."""

    def __init__(self, target: SshTarget, known_key: KnownHostKey | None) -> None:
        self._target = target
        self._known_key = known_key
        self.presented: KnownHostKey | None = None

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        presented = KnownHostKey.from_pkey(key)
        self.presented = presented
        if self._known_key is not None and not self._known_key.same_key(presented):
            raise HostKeyChanged(self._target, self._known_key, presented)


# ----------------------------------------------------------------------- connection


class SshConnection:
    """An authenticated SSH connection; use as a context manager or call `close`.

    ``host_key`` is the key the host presented (equal to the trusted key when one
    was given); ``first_use`` says it was accepted without a stored key, so the
    caller should store it."""

    def __init__(
        self,
        client: paramiko.SSHClient,
        target: SshTarget,
        host_key: KnownHostKey,
        *,
        first_use: bool,
        timeout: float,
    ) -> None:
        self._client = client
        self.target = target
        self.host_key = host_key
        self.first_use = first_use
        self.timeout = timeout
        self._sftp: paramiko.SFTPClient | None = None
        self._closed = False

    @property
    def transport(self) -> paramiko.Transport:
        """The live transport; `RemoteError` when the connection is closed or lost."""
        transport = self._client.get_transport()
        if self._closed or transport is None or not transport.is_active():
            raise RemoteError(f"SSH connection to {self.target.address} is closed")
        return transport

    def is_open(self) -> bool:
        transport = self._client.get_transport()
        return not self._closed and transport is not None and transport.is_active()

    def check_open(self) -> None:
        """Raise `RemoteError` when the connection is closed or was lost."""
        if not self.is_open():
            raise RemoteError(f"SSH connection to {self.target.address} is closed")

    def sftp(self) -> paramiko.SFTPClient:
        """The connection's SFTP session, opened on first use."""
        if self._sftp is None:
            try:
                sftp = paramiko.SFTPClient.from_transport(self.transport)
            except (paramiko.SSHException, EOFError, OSError) as exc:
                raise RemoteError(
                    f"cannot open an SFTP session on {self.target.address}: {_reason(exc)}; "
                    "agentless collection needs the SSH server's sftp subsystem enabled"
                ) from exc
            if sftp is None:
                raise RemoteError(f"cannot open an SFTP session on {self.target.address}")
            channel = sftp.get_channel()
            if channel is not None:
                channel.settimeout(self.timeout)
            self._sftp = sftp
        return self._sftp

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self._sftp is not None:
                self._sftp.close()
        finally:
            self._client.close()

    def __enter__(self) -> SshConnection:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _load_client_key(path: Path) -> paramiko.PKey:
    """The private key to authenticate with; `InvalidInput` when it cannot be used."""
    try:
        return paramiko.PKey.from_path(path)
    except OSError as exc:
        raise InvalidInput(f"cannot read SSH private key {path}: {exc.strerror or exc}") from exc
    except TypeError as exc:  # cryptography: "Password was not given but ... encrypted"
        raise InvalidInput(
            f"SSH private key {path} is protected by a passphrase; use a key without one, "
            "or load it into ssh-agent and give no key file"
        ) from exc
    except (ValueError, paramiko.SSHException) as exc:
        raise InvalidInput(
            f"{path} is not an SSH private key Patchwarden can use (OpenSSH or PEM "
            f"Ed25519, ECDSA or RSA): {_reason(exc)}"
        ) from exc


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__


def connect(
    target: SshTarget,
    known_key: KnownHostKey | None,
    *,
    timeout: float = DEFAULT_CONNECT_TIMEOUT,
) -> SshConnection:
    """Connect and authenticate, checking the host key first (see module docs).

    `timeout` bounds the TCP connect, the SSH banner, key exchange, authentication,
    channel opening and every SFTP round trip.

    Raises `HostKeyChanged` (a `HostKeyMismatch`) when the host key differs from
    `known_key`, `RemoteError` when the host cannot be reached, does not speak
    SSH, or refuses our key, and `InvalidInput` when the key file cannot be read or
    used (missing, not a private key, protected by a passphrase).
    """
    if timeout <= 0:
        raise InvalidInput(f"SSH timeout must be positive, not {timeout!r}")
    client_key = None if target.key_path is None else _load_client_key(target.key_path)

    policy = _TrustOnFirstUse(target, known_key)
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(policy)
    where = f"{target.address} as {target.username}"
    try:
        client.connect(
            target.host,
            port=target.port,
            username=target.username,
            password=None,
            pkey=client_key,
            # An explicit key is the only credential; without one, whatever the
            # SSH agent and ~/.ssh/id_* of the server's account offer.
            allow_agent=client_key is None,
            look_for_keys=client_key is None,
            timeout=timeout,
            banner_timeout=timeout,
            auth_timeout=timeout,
            channel_timeout=timeout,
            transport_factory=_TransportFactory(known_key),
        )
    except HostKeyMismatch:
        client.close()
        raise
    except paramiko.PasswordRequiredException as exc:
        client.close()
        raise RemoteError(
            f"SSH authentication to {where} failed: the default key is protected by a "
            "passphrase; load it into ssh-agent or give a key file without one"
        ) from exc
    except paramiko.AuthenticationException as exc:
        client.close()
        raise RemoteError(
            f"SSH authentication to {where} failed ({_reason(exc)}): the host does not "
            "accept our key; add its public key to that user's authorized_keys"
        ) from exc
    except paramiko.ssh_exception.NoValidConnectionsError as exc:
        client.close()
        raise RemoteError(f"cannot connect to {target.address}: connection refused") from exc
    except TimeoutError as exc:
        client.close()
        raise RemoteError(
            f"SSH connection to {target.address} timed out after {timeout:g}s"
        ) from exc
    except socket.gaierror as exc:
        client.close()
        raise RemoteError(
            f"cannot resolve SSH host {target.host!r}: {exc.strerror or exc}"
        ) from exc
    except paramiko.SSHException as exc:
        client.close()
        if "No authentication methods available" in str(exc):
            raise RemoteError(
                f"SSH authentication to {where} failed: no key to offer (no key file given, "
                "no SSH agent keys, no ~/.ssh/id_* keys)"
            ) from exc
        raise RemoteError(f"SSH connection to {target.address} failed: {_reason(exc)}") from exc
    except (EOFError, OSError) as exc:
        client.close()
        raise RemoteError(f"SSH connection to {target.address} failed: {_reason(exc)}") from exc
    except BaseException:
        client.close()
        raise

    presented = policy.presented
    if presented is None:  # pragma: no cover - paramiko always consults the policy
        client.close()
        raise RemoteError(f"SSH host {target.address} presented no host key")
    return SshConnection(client, target, presented, first_use=known_key is None, timeout=timeout)


# ------------------------------------------------------------------------------ host


def _remote_path(path: str) -> str:
    """Host paths are absolute inside the root, which is "/" over SSH."""
    if not isinstance(path, str) or "\0" in path:
        raise ValueError(f"invalid path {path!r}")
    return "/" + path.lstrip("/")


class SshHost:
    """The agent's `Host` interface for a remote machine over an `SshConnection`.

    Reads are done over SFTP; `run` uses an SSH exec channel. A lost connection
    raises `RemoteError` from any method: collection must not mistake it for an
    absent file or program. A command timeout raises `subprocess.TimeoutExpired`,
    as with `LocalHost`.
    """

    def __init__(
        self, connection: SshConnection, *, max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES
    ) -> None:
        self._connection = connection
        self._max_output_bytes = max_output_bytes

    @property
    def root(self) -> str:
        return "/"

    @property
    def is_live(self) -> bool:
        return True

    @property
    def connection(self) -> SshConnection:
        return self._connection

    # ------------------------------------------------------------------ SFTP reads

    def _lost(self, exc: BaseException, doing: str) -> RemoteError:
        return RemoteError(
            f"SSH connection to {self._connection.target.address} failed while {doing}: "
            f"{_reason(exc)}"
        )

    def _sftp_failed(self, exc: BaseException, doing: str) -> RemoteError | None:
        """None when `exc` is an answer about the file (absent, forbidden, not a
        file ...), else the error to raise because the connection itself failed."""
        if isinstance(exc, TimeoutError):
            return self._lost(exc, doing)
        if isinstance(exc, OSError) and self._connection.is_open():
            return None
        return self._lost(exc, doing)

    def read_text(self, path: str) -> str | None:
        remote = _remote_path(path)
        sftp = self._connection.sftp()
        doing = f"reading {remote}"
        try:
            with sftp.open(remote, "rb") as handle:
                size = handle.stat().st_size or 0
                if size > self._max_output_bytes:
                    raise RemoteError(
                        f"{remote} on {self._connection.target.address} is larger than "
                        f"{self._max_output_bytes} bytes"
                    )
                if size > 0:
                    handle.prefetch(size)
                data = handle.read(self._max_output_bytes + 1)
        except RemoteError:
            raise
        except (paramiko.SSHException, EOFError, OSError) as exc:
            error = self._sftp_failed(exc, doing)
            if error is not None:
                raise error from exc
            return None
        if len(data) > self._max_output_bytes:
            raise RemoteError(
                f"{remote} on {self._connection.target.address} is larger than "
                f"{self._max_output_bytes} bytes"
            )
        return data.decode("utf-8", errors="replace")

    def list_dir(self, path: str) -> Sequence[str] | None:
        remote = _remote_path(path)
        sftp = self._connection.sftp()
        try:
            return sorted(sftp.listdir(remote))
        except (paramiko.SSHException, EOFError, OSError) as exc:
            error = self._sftp_failed(exc, f"listing {remote}")
            if error is not None:
                raise error from exc
            return None

    def which(self, program: str) -> str | None:
        if not isinstance(program, str) or not program or "/" in program or "\0" in program:
            return None
        sftp = self._connection.sftp()
        for directory in PROGRAM_PATH:
            candidate = f"{directory}/{program}"
            try:
                attributes = sftp.stat(candidate)  # follows symlinks, like exec does
            except (paramiko.SSHException, EOFError, OSError) as exc:
                error = self._sftp_failed(exc, f"looking for {candidate}")
                if error is not None:
                    raise error from exc
                continue
            mode = attributes.st_mode
            if mode is not None and stat.S_ISREG(mode) and mode & 0o111:
                return candidate
        return None

    # ---------------------------------------------------------------------- run

    def _command_line(self, argv: Sequence[str]) -> tuple[str, list[str]]:
        if isinstance(argv, str) or not argv:
            raise ValueError("command must be a non-empty sequence of arguments")
        for argument in argv:
            if not isinstance(argument, str):
                raise ValueError(f"command argument {argument!r} is not a string")
            if "\0" in argument or "\n" in argument or "\r" in argument:
                raise ValueError(f"command argument {argument!r} contains NUL or a line break")
        program = argv[0]
        if "/" in program:
            if not program.startswith("/"):
                raise ValueError(f"program {program!r} must be a bare name or an absolute path")
        else:
            found = self.which(program)
            if found is None:
                raise CommandNotFound(program)
            program = found
        env = [f"{name}={value}" for name, value in sorted(COMMAND_ENV.items())]
        full = [_ENV_PROGRAM, *env, program, *argv[1:]]
        # An SSH "exec" request carries one string, which sshd always hands to the
        # remote account's login shell as `$SHELL -c STRING`: there is no way to
        # run an argv over SSH without a shell. Quoting every single element
        # (program, fixed environment and each argument) with shlex.quote is the only
        # safe way to make the shell rebuild exactly our argv: nothing in an
        # argument is ever expanded, split or run. shlex.quote produces POSIX sh
        # quoting, so the login shell must be a POSIX shell (sh, dash, bash, ksh,
        # zsh), which is the case for any account we can manage. Line breaks are
        # refused above so no shell's line handling can interfere.
        return shlex.join(full), full

    def run(self, argv: Sequence[str], timeout: float = DEFAULT_COMMAND_TIMEOUT) -> CommandResult:
        command, full = self._command_line(argv)
        address = self._connection.target.address
        deadline = time.monotonic() + timeout
        try:
            channel = self._connection.transport.open_session(timeout=self._connection.timeout)
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise self._lost(exc, f"starting {argv[0]}") from exc
        # On timeout the channel is closed; sshd then closes the command's pipes, so a
        # command still writing gets SIGPIPE, but one that is silent runs to its end.
        try:
            channel.exec_command(command)
            channel.shutdown_write()  # the command reads no input
            stdout, stderr = self._drain(channel, argv[0], deadline)
            if not channel.status_event.wait(max(0.0, deadline - time.monotonic())):
                raise subprocess.TimeoutExpired(full, timeout, stdout, stderr)
            # -1 when the server sent no exit status (e.g. the command was killed).
            returncode = channel.recv_exit_status()
        except _DrainTimeoutError as exc:
            raise subprocess.TimeoutExpired(full, timeout, exc.stdout, exc.stderr) from None
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise self._lost(exc, f"running {argv[0]}") from exc
        finally:
            _close_quietly(channel)
        out = stdout.decode("utf-8", errors="replace")
        err = stderr.decode("utf-8", errors="replace")
        if returncode == 127:
            # 127 is what `env` (or the shell, for `env` itself) exits with when the
            # program does not exist on the host.
            raise CommandNotFound(f"{argv[0]} (on {address}: {err.strip() or 'exit status 127'})")
        return CommandResult(returncode, out, err)

    def _drain(
        self, channel: paramiko.Channel, program: str, deadline: float
    ) -> tuple[bytes, bytes]:
        """Read stdout and stderr until the command closes both, before `deadline`."""
        stdout = bytearray()
        stderr = bytearray()
        while True:
            # Look for the end before reading: nothing arrives after EOF or close, so
            # once either is seen, the reads below take everything that is left.
            ended = channel.eof_received or channel.closed
            busy = True
            while busy:
                busy = False
                if channel.recv_ready():
                    stdout += channel.recv(_READ_CHUNK)
                    busy = True
                if channel.recv_stderr_ready():
                    stderr += channel.recv_stderr(_READ_CHUNK)
                    busy = True
                if len(stdout) + len(stderr) > self._max_output_bytes:
                    raise RemoteError(
                        f"{program} on {self._connection.target.address} wrote more than "
                        f"{self._max_output_bytes} bytes"
                    )
            if ended:
                return bytes(stdout), bytes(stderr)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _DrainTimeoutError(bytes(stdout), bytes(stderr))
            # The channel's file descriptor becomes readable when stdout or stderr
            # data, EOF or close arrives.
            select.select([channel], [], [], min(remaining, 5.0))


class _DrainTimeoutError(Exception):
    def __init__(self, stdout: bytes, stderr: bytes) -> None:
        super().__init__("command timed out")
        self.stdout = stdout
        self.stderr = stderr


# ------------------------------------------------------------------------- collect


def collect_over_ssh(
    target: SshTarget,
    known_key: KnownHostKey | None,
    *,
    timeout: float = DEFAULT_CONNECT_TIMEOUT,
) -> tuple[Inventory, KnownHostKey]:
    """Collect a host's inventory over SSH with the agent's own collectors.

    Returns the inventory (as `collect_inventory` returns it for the local host)
    and the host key the host presented: on first use (`known_key` None) the
    caller stores it; later it equals `known_key`.

    `collect_inventory` turns a failing collector into an "error" note; if the
    connection itself was lost on the way this raises `RemoteError` instead, so a
    report missing everything after the failure is never taken as complete.
    """
    with connect(target, known_key, timeout=timeout) as connection:
        inventory = collect_inventory(SshHost(connection))
        connection.check_open()
        return inventory, connection.host_key


def _close_quietly(channel: paramiko.Channel) -> None:
    """Close a channel whose transport may already be gone: the error that got us
    here (output over the limit, a timeout) is the one to report, not this one."""
    with contextlib.suppress(paramiko.SSHException, EOFError, OSError):
        channel.close()
