"""Our available updates against apt's own answer, for the same real repository.

Real .deb packages (dpkg-deb) indexed by apt-ftparchive into three suites
(bookworm, bookworm-updates, bookworm-security), served on loopback HTTP.
Version 1 is installed with ``dpkg --root`` into a sandbox root; apt then
runs against that root alone (``APT_CONFIG`` names a config that sets ``Dir``
to the root before apt reads any other configuration) and simulates a
dist-upgrade. Our side reads the same root with the dpkg collector and the
same suites with ``fetch_apt``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from patchwarden.agent.collectors.dpkg import parse_status
from patchwarden.domain.inventory import InstalledPackage
from patchwarden.repos.fetch import Fetched, fetch_apt
from patchwarden.repos.updates import AvailableUpdate, UpdateIndex
from tests.repos.builders import ENV, Deb, apt_ftparchive_suite, build_deb, require, run
from tests.repos.repo_server import serve

INSTALLED = [
    Deb("pwt-tool", "1.0-1", "amd64"),
    Deb("pwt-data", "1.0-1", "all"),
    Deb("pwt-sec", "2:1.0-1", "amd64"),
    Deb("pwt-move", "1.0-1", "amd64"),  # becomes arch all
    Deb("pwt-old", "2.0-1", "amd64"),  # the repository has only older
    Deb("pwt-local", "1.0-1", "amd64"),  # in no repository
]
SUITES = {
    "bookworm": (
        "Debian",
        [
            Deb("pwt-tool", "1.0-1", "amd64"),
            Deb("pwt-tool", "1.1-1", "amd64"),
            Deb("pwt-data", "1.0-2", "all"),
            Deb("pwt-sec", "2:1.0-1", "amd64"),
            Deb("pwt-move", "1.1-1", "all"),
            Deb("pwt-old", "1.0-1", "amd64"),
        ],
    ),
    "bookworm-updates": ("Debian", [Deb("pwt-data", "1.0-3", "all")]),
    "bookworm-security": (
        "Debian-Security",
        [Deb("pwt-sec", "2:1.0-1+deb12u1", "amd64"), Deb("pwt-tool", "1.1-1", "amd64")],
    ),
}
# "Inst pwt-tool [1.0-1] (1.1-1 Debian:bookworm, Debian-Security:bookworm-security [amd64])"
INST = re.compile(r"^Inst (\S+) \[(\S+)\] \((\S+) (.+) \[(\S+)\]\)", re.MULTILINE)


@dataclass(frozen=True)
class AptWorld:
    root: Path
    base_url: str
    apt_env: dict[str, str]


@pytest.fixture(scope="module")
def apt_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AptWorld]:
    require("dpkg-deb", "dpkg", "apt-ftparchive", "apt-get")
    work = tmp_path_factory.mktemp("apt")
    mirror = work / "mirror"
    # Each package is built once: a version in two suites is the same file, as in
    # a real archive (apt tells apart equal versions whose files differ).
    every = {*INSTALLED, *(deb for _, debs in SUITES.values() for deb in debs)}
    built = {deb: build_deb(work, deb) for deb in every}
    for suite, (label, debs) in SUITES.items():
        apt_ftparchive_suite(mirror, suite, [built[deb] for deb in debs], label=label)
    root = work / "root"
    for directory in (
        "var/lib/dpkg/info",
        "var/lib/dpkg/updates",
        "var/lib/apt/lists/partial",
        "var/cache/apt/archives/partial",
        "etc/apt/apt.conf.d",
        "etc/apt/preferences.d",
        "etc/apt/sources.list.d",
    ):
        (root / directory).mkdir(parents=True)
    (root / "var/lib/dpkg/status").touch()
    installed = [str(built[deb]) for deb in INSTALLED]
    run(
        [
            "dpkg",
            f"--root={root}",
            "--force-not-root",
            "--force-script-chrootless",
            "--install",
            *installed,
        ]
    )
    # Read before anything else, so the host's /etc/apt plays no part.
    config = root / "etc/apt/apt.conf"
    lines = [
        f'Dir "{root}/";',
        f'Dir::State::status "{root}/var/lib/dpkg/status";',
        'APT::Architecture "amd64";',
        'APT::Architectures { "amd64"; };',
        'Debug::NoLocking "true";',
    ]
    if os.geteuid() == 0:
        lines.append('APT::Sandbox::User "root";')  # no _apt user needed for downloads
    config.write_text("\n".join(lines) + "\n")
    with serve(mirror) as server:
        (root / "etc/apt/sources.list").write_text(
            "".join(f"deb [trusted=yes] {server.base_url} {suite} main\n" for suite in SUITES)
        )
        apt_env = {**ENV, "APT_CONFIG": str(config)}
        run(["apt-get", "-q", "update"], env=apt_env)
        yield AptWorld(root, server.base_url, apt_env)


def apt_says(world: AptWorld) -> dict[str, tuple[str, str, str, tuple[str, ...]]]:
    """name -> (installed, candidate, arch, suites) from a simulated dist-upgrade."""
    output = run(["apt-get", "-q", "-s", "dist-upgrade"], env=world.apt_env)
    found = {}
    for name, old, new, origins, arch in INST.findall(output):
        suites = tuple(origin.strip().rpartition(":")[2] for origin in origins.split(","))
        found[name] = (old, new, arch, suites)
    return found


def we_say(world: AptWorld) -> dict[str, AvailableUpdate]:
    status = (world.root / "var/lib/dpkg/status").read_text()
    installed = [InstalledPackage(**package) for package in parse_status(status)]  # type: ignore[arg-type]
    assert {p.name for p in installed} == {deb.name for deb in INSTALLED}
    with httpx.Client(timeout=10) as client:
        snapshots = []
        for suite in SUITES:
            result = fetch_apt(world.base_url, suite, ["main"], ["amd64"], client, name=suite)
            assert isinstance(result, Fetched)
            snapshots.append(result.snapshot)
    return {u.name: u for u in UpdateIndex.build(snapshots).updates_for(installed)}


def test_same_updates_as_apt(apt_world: AptWorld) -> None:
    apt = apt_says(apt_world)
    ours = we_say(apt_world)
    assert apt, "apt found no upgrades: the sandbox is not set up as intended"
    assert {
        name: (u.installed_version, u.target_version, u.target_arch, u.repositories)
        for name, u in ours.items()
    } == apt
    assert sorted(apt) == ["pwt-data", "pwt-move", "pwt-sec", "pwt-tool"]


def test_pocket_classification_of_the_updates(apt_world: AptWorld) -> None:
    ours = we_say(apt_world)
    assert {name: u.classification for name, u in ours.items()} == {
        "pwt-data": "bugfix",  # bookworm-updates
        "pwt-move": "bugfix",  # the release suite (a point release)
        "pwt-sec": "security",
        "pwt-tool": "security",  # in bookworm and bookworm-security: security wins
    }
    assert all(u.release_date is not None for u in ours.values())
