"""What the job tests share: real .debs with files, dependencies and
maintainer scripts; an apt repository of them on loopback HTTP; sandbox
roots; job documents.

Repository suites:
    stable  pwt-hello 1:1.0-1 and 1:2.0-1 (2.0 depends on pwt-dep, new in 2.0),
            pwt-dep 1.0-1, pwt-slow 1.0-1 and 2.0-1 (whose preinst blocks)
    next    only the 2.0 versions (as after a mirror dropped 1.0) and pwt-dep
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from patchwarden.agent.pkgmgr import AptManager
from tests.agent.pkgmgr.conftest import dpkg_sandbox
from tests.repos.builders import ENV, apt_ftparchive_suite, require, run
from tests.repos.repo_server import serve

HELLO, DEP, SLOW = "pwt-hello", "pwt-dep", "pwt-slow"
V1, V2 = "1:1.0-1", "1:2.0-1"
DEP_V = "1.0-1"
SLOW_V1, SLOW_V2 = "1.0-1", "2.0-1"
VERSION_FILE = "/usr/share/pwt-hello/version"
NOW = datetime.now(UTC).replace(microsecond=0)  # jobs also run in subprocesses


def make_deb(
    work: Path,
    name: str,
    version: str,
    files: dict[str, str] | None = None,
    *,
    depends: str | None = None,
    preinst: str | None = None,
) -> Path:
    tree = work / f"tree-{name}-{version.replace(':', '_')}"
    for path, content in (files or {}).items():
        target = tree / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    control = tree / "DEBIAN"
    control.mkdir(parents=True)
    text = (
        f"Package: {name}\nVersion: {version}\nArchitecture: amd64\n"
        "Maintainer: Patchwarden Tests <tests@example.com>\n"
        f"Description: Patchwarden job test package {name}\n"
    )
    if depends:
        text += f"Depends: {depends}\n"
    (control / "control").write_text(text)
    if preinst is not None:
        (control / "preinst").write_text(preinst)
        (control / "preinst").chmod(0o755)
    out = work / f"{name}_{version.replace(':', '%3a')}_amd64.deb"
    run(
        ["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(tree), str(out)],
        env={**ENV, "SOURCE_DATE_EPOCH": "1700000000"},
    )
    return out


@dataclass(frozen=True)
class JobRepo:
    url: str
    mirror: Path
    blocker: Path  # pwt-slow 2.0's preinst writes its pid here, then sleeps


@pytest.fixture(scope="session")
def job_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JobRepo]:
    require("dpkg", "dpkg-deb", "dpkg-query", "apt-get", "apt-ftparchive")
    work = tmp_path_factory.mktemp("job-debs")
    blocker = work / "blocker.pid"
    hello1 = make_deb(work, HELLO, V1, {VERSION_FILE: "1.0\n"})
    hello2 = make_deb(work, HELLO, V2, {VERSION_FILE: "2.0\n"}, depends=DEP)
    dep = make_deb(work, DEP, DEP_V, {"/usr/share/pwt-dep/README": "dep\n"})
    slow1 = make_deb(work, SLOW, SLOW_V1, {"/usr/share/pwt-slow/v": "1\n"})
    # Only when upgrading (not on the rollback's reinstall of 1.0): "$1" is
    # "upgrade" for the new package's preinst.
    slow2 = make_deb(
        work,
        SLOW,
        SLOW_V2,
        {"/usr/share/pwt-slow/v": "2\n"},
        preinst=f'#!/bin/sh\necho $$ > "{blocker}"\nexec sleep 300\n',
    )
    mirror = work / "mirror"
    apt_ftparchive_suite(mirror, "stable", [hello1, hello2, dep, slow1, slow2])
    apt_ftparchive_suite(mirror, "next", [hello2, dep, slow2])
    with serve(mirror) as server:
        yield JobRepo(server.base_url, mirror, blocker)


def apt_root(root: Path, repo: JobRepo, suite: str = "stable") -> AptManager:
    """A sandbox root apt works on, with a host name and os-release so the
    agent can enrol and report from it too."""
    dpkg_sandbox(root)
    (root / "etc/apt").mkdir(parents=True)
    use_suite(root, repo, suite)
    (root / "etc/hostname").write_text("job-host\n")
    (root / "etc/os-release").write_text('ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian 12"\n')
    manager = AptManager(str(root))
    refreshed = manager.refresh()
    assert refreshed.ok, refreshed.output
    return manager


def use_suite(root: Path, repo: JobRepo, suite: str) -> None:
    (root / "etc/apt/sources.list").write_text(f"deb [trusted=yes] {repo.url} {suite} main\n")


def job(
    *,
    job_id: int = 1,
    targets: list[dict[str, Any]] | None = None,
    action: str = "install",
    asset_id: int = 100,
    rollout_id: int = 7,
    smoke_tests: list[dict[str, Any]] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "protocol": 1,
        "job_id": job_id,
        "attempt": 1,
        "rollout_id": rollout_id,
        "asset_id": asset_id,
        "action": action,
        "issued_at": (NOW - timedelta(minutes=5)).isoformat(),
        "expires_at": (NOW + timedelta(hours=2)).isoformat(),
        "package_manager": "apt",
        "targets": targets
        if targets is not None
        else [{"name": HELLO, "version": V2, "arch": None}],
        "remove": [],
        "reboot": "never",
        "pre_checks": {"min_free_mb": 1, "check_lock": True, "refuse_pending_reboot": True},
        "fs_snapshot": None,
        "pre_hook": None,
        "post_hook": None,
        "smoke_tests": smoke_tests or [],
        "retry": {"max_attempts": 3, "initial_backoff": 1, "max_backoff": 8},
        "timeout": 600,
    }
    document.update(copy.deepcopy(overrides))
    return document


def file_says(root: Path, text: str) -> dict[str, Any]:
    """A command smoke test: the installed version file contains `text`."""
    return {
        "kind": "command",
        "name": f"version file says {text}",
        "timeout": 10,
        "argv": ["grep", "-q", text, str(root) + VERSION_FILE],
    }


REBOOT_STANDIN = """
import sys, uuid
with open(sys.argv[1], "w") as handle:
    handle.write(str(uuid.uuid4()) + "\\n")
"""


def reboot_standin(tmp_path: Path) -> tuple[list[str], Path]:
    """A reboot command that only changes the boot id file, as a reboot would."""
    boot_id = tmp_path / "boot_id"
    boot_id.write_text("11111111-1111-1111-1111-111111111111\n")
    script = tmp_path / "reboot.py"
    script.write_text(REBOOT_STANDIN)
    return [sys.executable, str(script), str(boot_id)], boot_id


def dpkg_log(root: Path) -> str:
    path = root / "var/log/dpkg.log"
    return path.read_text() if path.exists() else ""


def wait_for(path: Path, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.05)
    raise AssertionError(f"{path} did not appear")


def kill_tree(pid: int) -> None:
    """SIGKILL `pid` and every process below it (apt-get, dpkg, the
    maintainer script) at once, as if the host died."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    doomed, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        for child, its_parent in parents.items():
            if its_parent == parent and child not in doomed:
                doomed.add(child)
                frontier.append(child)
    for victim in doomed:
        try:
            os.kill(victim, signal.SIGKILL)
        except ProcessLookupError:
            continue


EXECUTOR_SCRIPT = """
import json, sys
from patchwarden.agent.jobs import JobExecutor
state, root, job_file = sys.argv[1:4]
with open(job_file) as handle:
    job = json.load(handle)
print(json.dumps(JobExecutor(state, root).run(job)))
"""


def executor_subprocess(state: Path, root: Path, document: dict[str, Any]) -> subprocess.Popen[str]:
    job_file = state.parent / f"job-{document['job_id']}.json"
    job_file.write_text(json.dumps(document))
    # Its own TMPDIR: a killed agent leaves apt's temporary config file behind.
    tmp = state.parent / "tmp"
    tmp.mkdir(exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "-c", EXECUTOR_SCRIPT, str(state), str(root), str(job_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(tmp)},
    )
