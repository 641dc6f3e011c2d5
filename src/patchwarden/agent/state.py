"""The agent's state directory.

    credentials.json  server URL, agent/asset ids, bearer credential, CA file
    seq               the last report sequence number used (sent or not)
    inventory.json    the last package list and facts the server acknowledged
    jobs/             the rollout job journal (agent/journal.py)
    kept/<rollout>/   package files of replaced versions, for rollback

Every file is written atomically (temporary file, fsync, os.replace) with mode
0600 from the moment it exists, so a crash never leaves a half-written or
briefly world-readable credential.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import stat
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, fields
from typing import Any, Dict, Iterator, List, Optional

from patchwarden.agent.errors import NotEnrolledError, StateError
from patchwarden.protocol.v1 import PackageDict

DEFAULT_STATE_DIR = "/var/lib/patchwarden-agent"
CREDENTIALS_FILE = "credentials.json"
INVENTORY_FILE = "inventory.json"
SEQ_FILE = "seq"
LOCK_FILE = "lock"

log = logging.getLogger("patchwarden.agent")


@dataclass(frozen=True)
class Credentials:
    server: str
    agent_id: int
    asset_id: int
    credential: str
    ca_file: Optional[str] = None
    report_interval: Optional[int] = None
    # The server's Ed25519 job-signing key (base64), pinned at enrolment or
    # on first use; a job that does not verify against it is refused.
    job_signing_key: Optional[str] = None
    job_signing_key_id: Optional[str] = None


@dataclass(frozen=True)
class Snapshot:
    """What the server holds for us: the inventory it acknowledged as `ack_seq`."""

    ack_seq: int
    packages: List[PackageDict]
    facts: Dict[str, Any]


def write_atomic(path: str, data: bytes, mode: int = 0o600) -> None:
    """Replace `path` with `data` so readers see the old or the new file, never
    a mix, and the file never exists with looser permissions than `mode`."""
    directory = os.path.dirname(path) or "."
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with suppress(FileNotFoundError):
        os.unlink(tmp)  # left over by a crashed run with our pid
    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise
    # Make the rename itself durable.
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class StateDir:
    def __init__(self, path: str = DEFAULT_STATE_DIR) -> None:
        self.path = os.path.abspath(path)

    def _file(self, name: str) -> str:
        return os.path.join(self.path, name)

    def ensure(self) -> None:
        """Create the directory (0700), or tighten an existing one."""
        try:
            os.makedirs(self.path, mode=0o700, exist_ok=True)
            mode = stat.S_IMODE(os.stat(self.path).st_mode)
            if mode & 0o077:
                log.warning("state directory %s was mode %04o; setting 0700", self.path, mode)
                os.chmod(self.path, 0o700)
        except OSError as exc:
            raise StateError("cannot create state directory %s: %s" % (self.path, exc)) from exc

    def _read_json(self, name: str) -> Optional[Any]:
        try:
            with open(self._file(name), "rb") as handle:
                return json.loads(handle.read().decode("utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise StateError("cannot read %s: %s" % (self._file(name), exc)) from exc

    def _write_json(self, name: str, value: Any) -> None:
        data = json.dumps(value, indent=1, sort_keys=True).encode("utf-8") + b"\n"
        try:
            write_atomic(self._file(name), data)
        except OSError as exc:
            raise StateError("cannot write %s: %s" % (self._file(name), exc)) from exc

    # -- credentials -------------------------------------------------------

    def save_credentials(self, credentials: Credentials) -> None:
        self.ensure()
        self._write_json(CREDENTIALS_FILE, asdict(credentials))

    def load_credentials(self) -> Credentials:
        path = self._file(CREDENTIALS_FILE)
        try:
            mode = stat.S_IMODE(os.stat(path).st_mode)
        except FileNotFoundError as exc:
            raise NotEnrolledError(
                "not enrolled (no %s): run `patchwarden-agent enroll --server URL --token TOKEN`"
                " first" % path
            ) from exc
        except OSError as exc:
            raise StateError("cannot read %s: %s" % (path, exc)) from exc
        if mode & 0o077:
            log.warning("%s was mode %04o (readable by others); setting 0600", path, mode)
            os.chmod(path, 0o600)
        data = self._read_json(CREDENTIALS_FILE)
        known = {f.name for f in fields(Credentials)}
        try:
            if not isinstance(data, dict):
                raise TypeError("not a JSON object")
            credentials = Credentials(**{k: v for k, v in data.items() if k in known})
            for name in ("agent_id", "asset_id"):
                if not isinstance(getattr(credentials, name), int):
                    raise TypeError("%s is not an integer" % name)
            if not isinstance(credentials.credential, str) or not isinstance(
                credentials.server, str
            ):
                raise TypeError("server and credential must be strings")
            for name in ("job_signing_key", "job_signing_key_id"):
                if getattr(credentials, name) is not None and not isinstance(
                    getattr(credentials, name), str
                ):
                    raise TypeError("%s is not a string" % name)
        except TypeError as exc:
            raise StateError("%s is corrupt (%s): enrol again" % (path, exc)) from exc
        return credentials

    # -- sequence numbers --------------------------------------------------

    def last_seq(self) -> int:
        """The highest seq used so far (0 before the first report)."""
        try:
            with open(self._file(SEQ_FILE), "rb") as handle:
                text = handle.read().decode("ascii", errors="replace").strip()
        except FileNotFoundError:
            text = "0"
        except OSError as exc:
            raise StateError("cannot read %s: %s" % (self._file(SEQ_FILE), exc)) from exc
        try:
            seq = int(text)
        except ValueError:
            seq = -1
        if seq < 0:
            raise StateError("%s is corrupt (%r)" % (self._file(SEQ_FILE), text[:20]))
        snapshot = self.load_snapshot()
        # If the counter file were lost, never go back below what the server saw.
        return max(seq, snapshot.ack_seq if snapshot else 0)

    def next_seq(self) -> int:
        """Reserve the next sequence number; it is on disk before we return,
        so a crash after sending can never make us reuse it."""
        seq = self.last_seq() + 1
        try:
            write_atomic(self._file(SEQ_FILE), b"%d\n" % seq)
        except OSError as exc:
            raise StateError("cannot write %s: %s" % (self._file(SEQ_FILE), exc)) from exc
        return seq

    # -- acknowledged inventory --------------------------------------------

    def load_snapshot(self) -> Optional[Snapshot]:
        try:
            data = self._read_json(INVENTORY_FILE)
        except StateError as exc:
            # A full report rebuilds it, so a damaged snapshot is not fatal.
            log.warning("%s; the next report will be a full one", exc)
            return None
        if data is None:
            return None
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("ack_seq"), int)
            or not isinstance(data.get("packages"), list)
        ):
            log.warning("%s is malformed; the next report will be a full one", INVENTORY_FILE)
            return None
        return Snapshot(data["ack_seq"], data["packages"], data.get("facts") or {})

    def save_snapshot(self, snapshot: Snapshot) -> None:
        self._write_json(INVENTORY_FILE, asdict(snapshot))

    def forget_snapshot(self) -> None:
        """After enrolment the server holds nothing for us yet."""
        with suppress(FileNotFoundError):
            os.unlink(self._file(INVENTORY_FILE))

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the directory for one agent process at a time."""
        self.ensure()
        fd = os.open(self._file(LOCK_FILE), os.O_CREAT | os.O_RDWR, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise StateError("another patchwarden-agent is using %s" % self.path) from exc
                raise
            yield
        finally:
            os.close(fd)
