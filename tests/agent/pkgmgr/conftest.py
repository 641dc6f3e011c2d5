"""Helpers for the package-manager tests: a process that holds a lock, a
recording stand-in for a package-manager command, a .deb with files, and
the rpm repository test_dnf.py and test_zypper.py share."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.repos.builders import ENV, Rpm, build_rpms, require, rpm_env, run
from tests.repos.repo_server import serve

HOLD_LOCK = """
import fcntl, os, sys
path, kind = sys.argv[1], sys.argv[2]
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
if kind == "posix":
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
else:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
print("locked", flush=True)
sys.stdin.read()
"""


@contextmanager
def holding_lock(path: Path, kind: str = "posix") -> Iterator[int]:
    """Another process holds an exclusive lock on ``path`` (fcntl "posix" as
    dpkg/apt/rpm take it, or "flock" as apk does) until the block ends; yields
    its pid. Locks are per process: the test process itself cannot stand in."""
    path.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(path), kind],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        yield holder.pid
    finally:
        holder.communicate("")  # closing stdin ends it
        holder.wait(timeout=10)


STUB = """#!{python}
import json, os, sys
with open({log!r}, "a") as handle:
    handle.write(json.dumps([os.path.basename(sys.argv[0]), *sys.argv[1:]]) + "\\n")
sys.stdout.write(os.environ.get("STUB_STDOUT", ""))
sys.stderr.write(os.environ.get("STUB_STDERR", ""))
sys.exit(int(os.environ.get("STUB_EXIT", "0")))
"""


@dataclass
class Stubs:
    """Stand-ins for package-manager programs on a PATH of their own: each
    records its argv and prints what STUB_STDOUT/STUB_STDERR say."""

    bin: Path
    log: Path

    @property
    def env(self) -> dict[str, str]:
        return {"PATH": str(self.bin)}

    def calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]


@pytest.fixture
def stubs(tmp_path: Path) -> Stubs:
    directory = tmp_path / "stub-bin"
    directory.mkdir()
    log = tmp_path / "stub-calls.jsonl"
    for program in ("apt-get", "dpkg", "dpkg-query", "dpkg-deb", "rpm", "dnf", "zypper", "apk"):
        stub = directory / program
        stub.write_text(STUB.format(python=sys.executable, log=str(log)))
        stub.chmod(0o755)
    return Stubs(directory, log)


def build_deb_with_files(
    work: Path,
    name: str,
    version: str,
    files: dict[str, tuple[bytes, int]],
    *,
    conffiles: tuple[str, ...] = (),
    postinst: str | None = None,
    arch: str = "amd64",
) -> Path:
    """A .deb holding ``files`` ({path: (content, mode)}), with conffiles and a
    maintainer script (tests.repos.builders.build_deb makes empty ones only)."""
    tree = work / f"tree-{name}-{version.replace(':', '_')}"
    for path, (content, mode) in files.items():
        target = tree / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        target.chmod(mode)
    control = tree / "DEBIAN"
    control.mkdir(parents=True)
    (control / "control").write_text(
        f"Package: {name}\nVersion: {version}\nArchitecture: {arch}\n"
        "Maintainer: Patchwarden Tests <tests@example.com>\n"
        f"Description: Patchwarden test package {name}\n"
        " with a long description\n .\n and a second paragraph.\n"
    )
    if conffiles:
        (control / "conffiles").write_text("".join(f"{path}\n" for path in conffiles))
    if postinst is not None:
        (control / "postinst").write_text(postinst)
        (control / "postinst").chmod(0o755)
    out = work / f"{name}_{version.replace(':', '%3a')}_{arch}.deb"
    env = {**ENV, "SOURCE_DATE_EPOCH": "1700000000"}
    run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(tree), str(out)], env=env)
    return out


def dpkg_sandbox(root: Path) -> Path:
    """The least a sandbox root needs for the apt back-end: a dpkg status
    file (the back-end makes apt's directories itself)."""
    (root / "var/lib/dpkg").mkdir(parents=True)
    (root / "var/lib/dpkg/status").touch()
    return root


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- an rpm repository with two versions of one package ---------------------------------

RPM_NAME = "pwt-hello"
RPM_V1, RPM_V2 = "1:1.0-1", "1:2.0-1"  # an epoch: specs and cache lookups must carry it


@dataclass(frozen=True)
class RpmRepo:
    base_url: str
    mirror: Path
    env: dict[str, str]
    arch: str
    base_rpm: Path  # installed in every root: zypper fails on an empty rpm database


@pytest.fixture(scope="session")
def rpm_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RpmRepo]:
    """Real rpms (rpmbuild) of pwt-hello 1:1.0-1 and 1:2.0-1, indexed by
    createrepo_c into repository "both" and repository "next" (2.0 only, as
    after a mirror dropped the old version), served on loopback HTTP."""
    require("rpm", "rpmbuild", "createrepo_c")
    work = tmp_path_factory.mktemp("rpm-pkgmgr")
    env = rpm_env(work / "home")
    arch = run(["rpm", "--eval", "%{_arch}"], env=env).strip()
    v1, v2 = Rpm(RPM_NAME, "1.0", "1", arch, epoch="1"), Rpm(RPM_NAME, "2.0", "1", arch, epoch="1")
    base = Rpm("pwt-base", "1.0", "1", "noarch")
    built = build_rpms(work, [v1, v2, base])
    mirror = work / "mirror"
    for repo, packages in (("both", [v1, v2]), ("next", [v2])):
        (mirror / repo).mkdir(parents=True)
        for package in packages:
            shutil.copy(built[package], mirror / repo)
        run(["createrepo_c", "--quiet", str(mirror / repo)], env=env)
    with serve(mirror) as server:
        yield RpmRepo(server.base_url, mirror, env, arch, built[base])


def rpm_root(root: Path, repo: RpmRepo) -> Path:
    """An rpm database in ROOT/var/lib/rpm holding pwt-base only (zypper's
    rpmdb2solv fails on a database with no package at all)."""
    root.mkdir(parents=True)
    rpm = ["rpm", "--root", str(root), "--dbpath", "/var/lib/rpm"]
    run([*rpm, "--initdb"], env=repo.env)
    run([*rpm, "--install", "--nodeps", str(repo.base_rpm)], env=repo.env)
    return root
