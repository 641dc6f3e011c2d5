"""The interface's shared parts: validation before anything runs, the
command runner (locale, timeout, truncation, transient failures), locks,
the registry and detection. Real processes throughout; stand-in programs
(tests/agent/pkgmgr/conftest.py) only where a real one would change the host."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from patchwarden.agent.errors import AgentError
from patchwarden.agent.pkgmgr import (
    BACKENDS,
    ApkManager,
    AptManager,
    DnfManager,
    InvalidPackageSpec,
    PackageManager,
    Target,
    ToolMissing,
    UnknownBackend,
    ZypperManager,
    backend,
    detect,
)
from patchwarden.agent.pkgmgr.base import (
    OUTPUT_LIMIT,
    flock_held,
    pid_file_held,
    posix_lock_held,
    truncate,
)
from tests.agent.pkgmgr.conftest import Stubs, dpkg_sandbox, holding_lock

BAD_NAMES = [
    "foo;rm -rf /",
    "$(x)",
    "`reboot`",
    "-rf",
    "--allow-unauthenticated",
    "foo bar",
    "foo|bar",
    "foo&&bar",
    "../etc/passwd",
    "foo\nbar",
    "foo\n",
    "foo=1.0",
    "foo*",
    "",
]
BAD_VERSIONS = ["1.0;reboot", "-1", "1.0 2", "$(id)", "1.0|x", "", "1.0\n"]


def forged(name: str, version: str = "1.0-1", arch: str | None = None) -> Target:
    """A Target that skipped its own validation, as a careless caller (or
    object.__setattr__) could make: the back-ends check again."""
    target = Target("placeholder", "1.0-1")
    object.__setattr__(target, "name", name)
    object.__setattr__(target, "version", version)
    object.__setattr__(target, "arch", arch)
    return target


@pytest.mark.parametrize("name", BAD_NAMES)
def test_target_refuses_bad_names(name: str) -> None:
    with pytest.raises(InvalidPackageSpec, match="refusing package name"):
        Target(name, "1.0-1")


@pytest.mark.parametrize("version", BAD_VERSIONS)
def test_target_refuses_bad_versions(version: str) -> None:
    with pytest.raises(InvalidPackageSpec, match="refusing package version"):
        Target("pwt-hello", version)


def test_target_refuses_bad_arch_and_accepts_real_specs() -> None:
    with pytest.raises(InvalidPackageSpec):
        Target("pwt-hello", "1.0-1", "amd64;id")
    # Real names and versions of every family pass.
    Target("libstdc++6", "1:12.2.0-14+deb12u1", "amd64")
    Target("python3.11", "3.11.2-6+deb12u6", "all")
    Target("kernel-core", "5.14.0-427.el9", "x86_64")
    Target("pwt-sec", "2:1.0-1^git1.el9", "x86_64")
    Target("busybox", "1.36.1-r15")


def test_invalid_spec_is_a_value_error_and_an_agent_error() -> None:
    assert issubclass(InvalidPackageSpec, ValueError)
    assert issubclass(InvalidPackageSpec, AgentError)


def _all_backends(root: Path, stubs: Stubs) -> list[PackageManager]:
    return [cls(str(root), env=stubs.env) for cls in BACKENDS.values()]


CALLS: list[tuple[str, Callable[[PackageManager, str], object]]] = [
    ("install", lambda pm, bad: pm.install([forged(bad)])),
    ("check", lambda pm, bad: pm.check([forged(bad)])),
    ("remove", lambda pm, bad: pm.remove([bad])),
    ("installed", lambda pm, bad: pm.installed([bad])),
    ("cached_package_file", lambda pm, bad: pm.cached_package_file(bad, "1.0-r1")),
    ("repack", lambda pm, bad: pm.repack(bad, "/nonexistent")),
]


@pytest.mark.parametrize("call", [c for _, c in CALLS], ids=[n for n, _ in CALLS])
@pytest.mark.parametrize("bad", ["foo;rm -rf /", "$(touch /tmp/pwned)", "-y"])
def test_bad_names_are_refused_before_anything_runs(
    tmp_path: Path, stubs: Stubs, call: Callable[[PackageManager, str], object], bad: str
) -> None:
    root = dpkg_sandbox(tmp_path / "root")
    for manager in _all_backends(root, stubs):
        with pytest.raises(InvalidPackageSpec):
            call(manager, bad)
    assert stubs.calls() == [], "a command ran although its input was refused"


@pytest.mark.parametrize("version", ["1.0;reboot", "$(id)", "-1"])
def test_bad_versions_are_refused_before_anything_runs(
    tmp_path: Path, stubs: Stubs, version: str
) -> None:
    root = dpkg_sandbox(tmp_path / "root")
    for manager in _all_backends(root, stubs):
        with pytest.raises(InvalidPackageSpec):
            manager.install([forged("pwt-hello", version)])
        with pytest.raises(InvalidPackageSpec):
            manager.install([forged("pwt-hello", "1.0-1", "x86_64;id")])
    assert stubs.calls() == []


def test_shape_of_versions_per_family_is_checked(tmp_path: Path, stubs: Stubs) -> None:
    """An rpm version without a release, or an apk one without -rN, would
    match more than one package version: not exact, so refused."""
    root = str(tmp_path)
    for cls in (DnfManager, ZypperManager):
        with pytest.raises(InvalidPackageSpec, match="version-release"):
            cls(root, env=stubs.env).install([Target("pwt-hello", "1.0")])
    with pytest.raises(InvalidPackageSpec, match="-rN"):
        ApkManager(root, env=stubs.env).install([Target("busybox", "1.36.1")])
    assert stubs.calls() == []


def test_bad_package_files_are_refused(tmp_path: Path, stubs: Stubs) -> None:
    root = dpkg_sandbox(tmp_path / "root")
    text_file = tmp_path / "notes.txt"
    text_file.write_text("x")
    for manager in _all_backends(root, stubs):
        for paths in (
            [str(text_file)],  # not a package file
            [str(tmp_path / f"missing{manager.file_suffix}")],
            [],
            str(tmp_path / f"x{manager.file_suffix}"),  # a string, not a list
        ):
            with pytest.raises(InvalidPackageSpec):
                manager.install_files(paths)
    assert stubs.calls() == []


def test_empty_and_duplicate_targets_are_refused(tmp_path: Path, stubs: Stubs) -> None:
    manager = AptManager(str(dpkg_sandbox(tmp_path / "root")), env=stubs.env)
    with pytest.raises(InvalidPackageSpec, match="no targets"):
        manager.install([])
    with pytest.raises(InvalidPackageSpec, match="more than once"):
        manager.install([Target("pwt-hello", "1.0-1"), Target("pwt-hello", "2.0-1")])
    with pytest.raises(InvalidPackageSpec, match="string"):
        manager.remove("pwt-hello")
    assert stubs.calls() == []


# -- the runner ------------------------------------------------------------------------


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_commands_run_with_a_fixed_locale_and_no_shell(tmp_path: Path) -> None:
    manager = AptManager(str(tmp_path), env={"EXTRA": "yes"})
    code = (
        "import os, sys; print(os.environ['LC_ALL'], os.environ['DEBIAN_FRONTEND'], "
        "os.environ['EXTRA'], sys.argv[1])"
    )
    result = manager.run([*python(code), "$(id); echo x"])
    assert result.ok and result.exit_code == 0
    # The argument reached the program as it was: no shell expanded it.
    assert result.stdout.strip() == "C noninteractive yes $(id); echo x"
    assert result.argv[0] == sys.executable


def test_missing_tool_raises(tmp_path: Path) -> None:
    root = dpkg_sandbox(tmp_path / "root")
    manager = AptManager(str(root), env={"PATH": str(tmp_path)})
    with pytest.raises(ToolMissing, match="apt-get"):
        manager.refresh()


def test_output_is_truncated_to_the_limit(tmp_path: Path) -> None:
    manager = AptManager(str(tmp_path))
    result = manager.run(python(f"print('x' * {OUTPUT_LIMIT * 2}); print('the end')"))
    assert len(result.stdout) < OUTPUT_LIMIT + 100
    assert result.stdout.startswith("[... ") and result.stdout.rstrip().endswith("the end")
    assert truncate("short") == "short"


@pytest.mark.parametrize(
    ("message", "code", "transient"),
    [
        ("E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 1", 100, True),
        ("W: Failed to fetch http://x/y  Temporary failure resolving 'deb.debian.org'", 100, True),
        ("E: Unable to fetch some archives, maybe run apt-get update", 100, True),
        ("E: Unable to locate package pwt-nothing", 100, False),
        ("E: Version '9' for 'pwt-hello' was not found", 100, False),
    ],
)
def test_apt_transient_failures(tmp_path: Path, message: str, code: int, transient: bool) -> None:
    """apt-get exits 100 for every error: the message decides."""
    result = AptManager(str(tmp_path)).run(
        python(f"import sys; sys.stderr.write({message!r}); sys.exit({code})")
    )
    assert not result.ok
    assert result.transient is transient


@pytest.mark.parametrize(
    ("cls", "message", "code", "transient"),
    [
        (DnfManager, "Error: Failed to download metadata for repo 'pw'", 1, True),
        (DnfManager, "Curl error (7): Couldn't connect to server", 1, True),
        (DnfManager, "[MIRROR] x.rpm: Cannot download, all mirrors were already tried", 1, True),
        (DnfManager, "Error: Unable to find a match: pwt-hello-0:9-1", 1, False),
        (ZypperManager, "System management is locked by the application with pid 4", 7, True),
        (ZypperManager, "", 7, True),  # ZYPPER_EXIT_ZYPP_LOCKED
        (ZypperManager, "No provider of 'pwt-hello=9-1' found.", 104, False),
        (ApkManager, "ERROR: Unable to lock database: Resource temporarily unavailable", 99, True),
        (ApkManager, "ERROR: unable to select packages", 1, False),
    ],
)
def test_transient_failures_per_backend(
    tmp_path: Path, cls: type[PackageManager], message: str, code: int, transient: bool
) -> None:
    result = cls(str(tmp_path)).run(
        python(f"import sys; sys.stderr.write({message!r}); sys.exit({code})")
    )
    assert result.transient is transient


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    """dpkg and apt's download helpers are children of apt-get: a timeout
    must end them too, not leave them running without a parent."""
    pid_file = tmp_path / "child.pid"
    code = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "time.sleep(60)\n"
    )
    manager = AptManager(str(tmp_path), timeout=60)
    started = time.monotonic()
    result = manager.run(python(code), timeout=1.5)
    assert time.monotonic() - started < 15
    assert result.timed_out and result.exit_code is None and not result.ok
    assert not result.transient
    child = int(pid_file.read_text())
    for _ in range(50):  # the kernel reaps it shortly after SIGTERM
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.kill(child, signal.SIGKILL)
        pytest.fail("the grandchild outlived the timeout")


# -- locks ---------------------------------------------------------------------------


def test_posix_lock_seen_only_while_another_process_holds_it(tmp_path: Path) -> None:
    lock = tmp_path / "lock-frontend"
    assert not posix_lock_held(str(lock))  # absent
    lock.touch()
    assert not posix_lock_held(str(lock))
    with holding_lock(lock, "posix"):
        assert posix_lock_held(str(lock))
        assert not flock_held(str(lock))  # a different kind of lock
    assert not posix_lock_held(str(lock))


def test_flock_seen_only_while_held(tmp_path: Path) -> None:
    lock = tmp_path / "lock"
    assert not flock_held(str(lock))
    with holding_lock(lock, "flock"):
        assert flock_held(str(lock))
    assert not flock_held(str(lock))


def test_pid_file_lock(tmp_path: Path) -> None:
    pid_file = tmp_path / "rpmdb_lock.pid"
    assert not pid_file_held(str(pid_file))
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        pid_file.write_text(str(sleeper.pid))
        assert pid_file_held(str(pid_file))
    finally:
        sleeper.kill()
        sleeper.wait()
    assert not pid_file_held(str(pid_file))  # the process is gone
    pid_file.write_text(str(os.getpid()))
    assert not pid_file_held(str(pid_file))  # our own
    pid_file.write_text("garbage")
    assert not pid_file_held(str(pid_file))


# -- registry and detection ------------------------------------------------------------


def test_registry_by_name() -> None:
    assert sorted(BACKENDS) == ["apk", "apt", "dnf", "zypper"]
    for name, cls in BACKENDS.items():
        manager = backend(name, "/srv/root")
        assert isinstance(manager, cls) and manager.name == name
        assert manager.root == "/srv/root" and manager.is_sandbox
    with pytest.raises(UnknownBackend, match="valid: apk, apt, dnf, zypper"):
        backend("yum")
    assert not backend("apt").is_sandbox


def test_detect_from_the_root(tmp_path: Path, stubs: Stubs) -> None:
    assert detect(str(tmp_path / "empty"), env=stubs.env) is None
    deb = dpkg_sandbox(tmp_path / "deb")
    assert isinstance(detect(str(deb), env=stubs.env), AptManager)
    rpm_root = tmp_path / "rpm"
    (rpm_root / "var/lib/rpm").mkdir(parents=True)
    (rpm_root / "var/lib/rpm/rpmdb.sqlite").touch()
    assert isinstance(detect(str(rpm_root), env=stubs.env), DnfManager)
    (stubs.bin / "dnf").unlink()
    assert isinstance(detect(str(rpm_root), env=stubs.env), ZypperManager)
    (stubs.bin / "zypper").unlink()
    assert detect(str(rpm_root), env=stubs.env) is None  # no front-end for the database
    apk_root = tmp_path / "apk"
    (apk_root / "lib/apk/db").mkdir(parents=True)
    (apk_root / "lib/apk/db/installed").write_text("P:busybox\nV:1.36.1-r15\n\n")
    detected = detect(str(apk_root), env=stubs.env)
    assert isinstance(detected, ApkManager)
    assert detected.installed() == {"busybox": "1.36.1-r15"}
