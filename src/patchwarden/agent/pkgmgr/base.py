"""The package-manager interface, its values, and what every back-end shares.

A back-end installs *exact* versions: `install([Target(name, version)])`
moves a package to that version, up or down, and touches nothing else it
can avoid. Every command is an argument list run without a shell, with a
fixed locale, a timeout, and its own process group (so a timeout ends
dpkg and apt's download helpers too, not only the front-end). Names,
versions, architectures and file paths are validated before anything runs.

`root` is "/" for the live system or a sandbox root (a tree with its own
package database); each back-end knows how to point its tools at it.
"""

from __future__ import annotations

import abc
import errno
import fcntl
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
from dataclasses import dataclass
from typing import (
    Callable,
    Collection,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Pattern,
    Sequence,
    Tuple,
)

from patchwarden.agent.errors import AgentError
from patchwarden.agent.host import COMMAND_ENV
from patchwarden.protocol.v1 import ARCH_RE, NAME_RE, VERSION_RE

OUTPUT_LIMIT = 64 * 1024  # characters of stdout/stderr kept in a Result
DEFAULT_TIMEOUT = 1800.0  # seconds, for commands that change the system
QUERY_TIMEOUT = 300.0  # seconds, for commands that only read
KILL_GRACE = 10.0  # seconds between SIGTERM and SIGKILL after a timeout

# Messages that mean "try again later" whatever the tool: the network, or a
# lock another process holds. Each back-end adds its own.
COMMON_TRANSIENT = (
    "Temporary failure resolving",
    "Temporary failure in name resolution",
    "Could not resolve host",
    "Connection refused",
    "Connection timed out",
    "Network is unreachable",
    "No route to host",
)


class PackageManagerError(AgentError):
    """A package-manager operation could not be done (not: it ran and failed,
    which is a `Result` with ok=False)."""


class InvalidPackageSpec(PackageManagerError, ValueError):
    """A package name, version, architecture or file was refused before
    anything ran."""


class ToolMissing(PackageManagerError):
    """The program a back-end needs is not installed."""


class UnknownBackend(PackageManagerError, ValueError):
    """A back-end name that is not in the registry."""


# -- validation ----------------------------------------------------------------------


def _check(kind: str, value: object, pattern: Pattern[str]) -> str:
    # fullmatch: `$` in these patterns would also accept a trailing newline.
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise InvalidPackageSpec(
            "refusing package %s %r: it must match %s (no spaces, shell or option syntax)"
            % (kind, value, pattern.pattern)
        )
    return value


def validate_name(name: object) -> str:
    return _check("name", name, NAME_RE)


def validate_version(version: object) -> str:
    return _check("version", version, VERSION_RE)


def validate_arch(arch: object) -> str:
    return _check("architecture", arch, ARCH_RE)


def validate_names(names: Iterable[str]) -> List[str]:
    if isinstance(names, str):  # a lone string would be taken letter by letter
        raise InvalidPackageSpec("expected a list of package names, got the string %r" % names)
    checked = [validate_name(name) for name in names]
    if not checked:
        raise InvalidPackageSpec("no package names given")
    return checked


def validate_files(paths: Iterable[str], suffix: str) -> List[str]:
    """Absolute paths of existing regular files ending in `suffix`."""
    if isinstance(paths, str):
        raise InvalidPackageSpec("expected a list of package files, got the string %r" % paths)
    checked: List[str] = []
    for path in paths:
        if not isinstance(path, str) or not path.endswith(suffix) or "\n" in path or "\x00" in path:
            raise InvalidPackageSpec(
                "refusing package file %r: expected a %s file" % (path, suffix)
            )
        absolute = os.path.abspath(path)  # also keeps it from looking like an option
        if not os.path.isfile(absolute):
            raise InvalidPackageSpec("package file %s does not exist" % absolute)
        checked.append(absolute)
    if not checked:
        raise InvalidPackageSpec("no package files given")
    return checked


# -- values --------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One package at exactly one version (and, optionally, architecture).

    Versions are written as the collectors report them: deb
    `[epoch:]upstream[-revision]`, rpm `[epoch:]version-release`, apk
    `version-rN`. Invalid values are refused when the Target is made.
    """

    name: str
    version: str
    arch: Optional[str] = None

    def __post_init__(self) -> None:
        validate_name(self.name)
        validate_version(self.version)
        if self.arch is not None:
            validate_arch(self.arch)


def validate_targets(targets: Iterable[Target]) -> List[Target]:
    checked = list(targets)
    if not checked:
        raise InvalidPackageSpec("no targets given")
    seen = set()
    for target in checked:
        if not isinstance(target, Target):
            raise InvalidPackageSpec("expected Target values, got %r" % (target,))
        Target(target.name, target.version, target.arch)  # re-check: dataclasses can be forged
        key = (target.name, target.arch)
        if key in seen:
            raise InvalidPackageSpec("%s is given more than once" % target.name)
        seen.add(key)
    return checked


@dataclass(frozen=True)
class Result:
    """What one command did.

    `ok` is the back-end's verdict (some tools signal success with a non-zero
    code). `transient` says the failure is worth retrying with backoff: a lock
    held by another process, or a mirror that could not be reached.
    `exit_code` is None when the command was killed after `timed_out`.
    stdout/stderr keep at most OUTPUT_LIMIT characters (the end, where the
    errors are).
    """

    ok: bool
    exit_code: Optional[int]
    argv: Tuple[str, ...]
    stdout: str
    stderr: str
    transient: bool = False
    timed_out: bool = False

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@dataclass(frozen=True)
class Change:
    """One package a transaction would touch. `action` is one of install,
    upgrade, downgrade, reinstall, remove; `version` is the version after the
    change (None for remove), `old_version` the one before (None for install)."""

    action: str
    name: str
    version: Optional[str] = None
    old_version: Optional[str] = None
    arch: Optional[str] = None


ACTIONS = ("install", "upgrade", "downgrade", "reinstall", "remove")


@dataclass(frozen=True)
class Plan:
    """The answer of check mode: what `install` would change, and the
    simulation's own Result. Nothing was changed to get it."""

    changes: Tuple[Change, ...]
    result: Result

    @property
    def ok(self) -> bool:
        return self.result.ok

    @property
    def transient(self) -> bool:
        return self.result.transient


# -- running commands ----------------------------------------------------------------


def truncate(text: str, limit: int = OUTPUT_LIMIT) -> str:
    if len(text) <= limit:
        return text
    cut = len(text) - limit
    return "[... %d characters cut ...]\n%s" % (cut, text[cut:])


def _kill_group(process: "subprocess.Popen[bytes]") -> None:
    """SIGTERM the command's process group, SIGKILL it if it lingers."""
    for sig, wait in ((signal.SIGTERM, KILL_GRACE), (signal.SIGKILL, None)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


# -- locks ---------------------------------------------------------------------------

# struct flock on 64-bit Linux: short l_type, short l_whence, (pad), off_t
# l_start, off_t l_len, pid_t l_pid, (pad).
_FLOCK_LINUX64 = "hhxxxxqqixxxx"


def _open_lock_file(path: str) -> Optional[int]:
    """A read-only descriptor of the lock file; None when it does not exist."""
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise PackageManagerError("cannot check the lock %s: %s" % (path, exc)) from exc


def posix_lock_held(path: str) -> bool:
    """True when another process holds a POSIX (fcntl) lock on `path`, the
    kind dpkg, apt and rpm take. Asks with F_GETLK, so nothing is locked,
    not even for a moment. A missing file is an unheld lock.

    Only another *process* can be seen: locks are per process, and closing
    any descriptor of the file drops this process's own locks on it.
    """
    fd = _open_lock_file(path)
    if fd is None:
        return False
    try:
        if sys.platform.startswith("linux") and struct.calcsize("l") == 8:
            query = struct.pack(_FLOCK_LINUX64, fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
            answer = fcntl.fcntl(fd, fcntl.F_GETLK, query)
            lock_type: int = struct.unpack(_FLOCK_LINUX64, answer)[0]
            return lock_type != fcntl.F_UNLCK
        # Elsewhere the struct layout varies: try a shared lock instead.
        try:
            fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EAGAIN):
                return True
            raise
        fcntl.lockf(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def flock_held(path: str) -> bool:
    """True when a BSD flock() lock on `path` is held elsewhere (apk's kind)."""
    fd = _open_lock_file(path)
    if fd is None:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return True
            raise
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def pid_file_held(path: str) -> bool:
    """True when `path` names a live process other than this one (the pid-file
    locks of dnf and libzypp)."""
    try:
        with open(path, "rb") as handle:
            text = handle.read(32).decode("ascii", errors="replace").strip()
    except OSError:
        return False
    if not text.isdigit():
        return False
    pid = int(text)
    return pid != os.getpid() and os.path.exists("/proc/%d" % pid)


# -- the interface -------------------------------------------------------------------


class PackageManager(abc.ABC):
    """One package manager acting on one root.

    `env` adds to (or overrides) the fixed command environment (LC_ALL=C,
    DEBIAN_FRONTEND=noninteractive, a standard PATH); `timeout` bounds each
    command that changes the system.
    """

    name = ""  # registry key, set by each back-end
    file_suffix = ""  # the package file type install_files() takes
    # Output fragments and exit codes that make a failure transient.
    transient_messages: Tuple[str, ...] = COMMON_TRANSIENT
    transient_exit_codes: Collection[int] = ()

    def __init__(
        self,
        root: str = "/",
        *,
        env: Optional[Mapping[str, str]] = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.root = os.path.abspath(root)
        self.env: Dict[str, str] = dict(env or {})
        self.timeout = timeout

    def __repr__(self) -> str:
        return "%s(root=%r)" % (type(self).__name__, self.root)

    @property
    def is_sandbox(self) -> bool:
        return self.root != "/"

    def path(self, path: str) -> str:
        """A path inside the root, as seen from the host."""
        return os.path.join(self.root, path.lstrip("/"))

    # -- what every back-end provides ---------------------------------------------------

    @abc.abstractmethod
    def installed(self, names: Optional[Iterable[str]] = None) -> Dict[str, str]:
        """{name: version} of the installed packages among `names` (all when
        None); packages that are not installed are left out. When a name has
        several instances (multi-arch, install-only kernels) the last one the
        database lists wins."""

    @abc.abstractmethod
    def refresh(self) -> Result:
        """Fetch the repositories' current metadata."""

    @abc.abstractmethod
    def install(self, targets: Sequence[Target]) -> Result:
        """Move each target package to exactly its version, upgrading,
        downgrading or installing it; never a blanket upgrade."""

    @abc.abstractmethod
    def install_files(self, paths: Sequence[str]) -> Result:
        """Install local package files (a kept or repacked version), older
        than the installed one or not."""

    @abc.abstractmethod
    def remove(self, names: Sequence[str]) -> Result:
        """Remove the packages (not their configuration)."""

    @abc.abstractmethod
    def check(self, targets: Sequence[Target]) -> Plan:
        """Check mode: what install(targets) would change, changing nothing."""

    @abc.abstractmethod
    def cached_package_file(
        self, name: str, version: str, arch: Optional[str] = None
    ) -> Optional[str]:
        """The package file of that exact version in the package manager's
        download cache, or None."""

    @abc.abstractmethod
    def repack(self, name: str, dest_dir: str, arch: Optional[str] = None) -> Optional[str]:
        """Rebuild the installed version's package file from the installed
        files into dest_dir; None when this package manager cannot."""

    @abc.abstractmethod
    def lock_held(self) -> bool:
        """True while another process holds the package manager's lock."""

    @abc.abstractmethod
    def reboot_required(self) -> bool:
        """True when installed changes wait for a reboot."""

    # -- shared machinery ---------------------------------------------------------------

    def command_env(self, extra: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
        env = dict(COMMAND_ENV)
        env["DEBIAN_FRONTEND"] = "noninteractive"
        env["APT_LISTCHANGES_FRONTEND"] = "none"
        env.update(self.env)
        env.update(extra or {})
        return env

    def which(self, program: str) -> Optional[str]:
        return shutil.which(program, path=self.command_env()["PATH"])

    def is_transient(self, exit_code: Optional[int], output: str) -> bool:
        if exit_code is not None and exit_code in self.transient_exit_codes:
            return True
        return any(message in output for message in self.transient_messages)

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: Optional[float] = None,
        ok_codes: Collection[int] = (0,),
        env: Optional[Mapping[str, str]] = None,
        judge: Optional[Callable[[Optional[int], str], bool]] = None,
    ) -> Result:
        """Run argv (a list, never a shell) and describe the outcome.

        Success is an exit code in `ok_codes`, or whatever `judge(exit_code,
        output)` says for tools whose exit code does not tell. Raises
        ToolMissing when argv[0] is not installed.
        """
        argv = [str(arg) for arg in argv]
        full_env = self.command_env(env)
        program = shutil.which(argv[0], path=full_env["PATH"])
        if program is None:
            raise ToolMissing("%s is not installed (searched %s)" % (argv[0], full_env["PATH"]))
        process = subprocess.Popen(
            [program, *argv[1:]],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=full_env,
            start_new_session=True,  # its own process group: a timeout ends it all
        )
        timed_out = False
        try:
            out, err = process.communicate(timeout=timeout or self.timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(process)
            try:
                out, err = process.communicate(timeout=KILL_GRACE)
            except subprocess.TimeoutExpired:  # a daemonised grandchild holds the pipes
                out, err = b"", b""
        stdout = out.decode("utf-8", errors="replace")
        stderr = err.decode("utf-8", errors="replace")
        code = None if timed_out else process.returncode
        if judge is not None:
            ok = code is not None and judge(code, stdout + stderr)
        else:
            ok = code is not None and code in ok_codes
        if timed_out:
            stderr += "\n[patchwarden: killed after %.0f s]" % (timeout or self.timeout)
        return Result(
            ok=ok,
            exit_code=code,
            argv=tuple(argv),
            stdout=truncate(stdout),
            stderr=truncate(stderr),
            transient=not ok and not timed_out and self.is_transient(code, stdout + stderr),
            timed_out=timed_out,
        )

    def query(
        self,
        argv: Sequence[str],
        *,
        ok_codes: Collection[int] = (0,),
        env: Optional[Mapping[str, str]] = None,
        judge: Optional[Callable[[Optional[int], str], bool]] = None,
    ) -> Result:
        """run() with the shorter timeout of commands that only read."""
        return self.run(
            argv,
            timeout=min(self.timeout, QUERY_TIMEOUT),
            ok_codes=ok_codes,
            env=env,
            judge=judge,
        )


RPM_VERSION_RE = re.compile(r"^(?:[0-9]+:)?[^:-]+-[^:-]+$")


def split_epoch(version: str) -> Tuple[str, str]:
    """("epoch", "rest") with epoch "0" when there is none."""
    epoch, sep, rest = version.partition(":")
    return (epoch, rest) if sep else ("0", version)
