"""Our available updates against dnf's and zypper's, for the same real repository.

Real rpms (rpmbuild --target) indexed by createrepo_c, with an updateinfo.xml
added by modifyrepo_c, served on loopback HTTP. Version 1 is installed with
``rpm --root`` into a sandbox root (database in /var/lib/rpm, which
``~/.rpmmacros`` makes every tool use: Debian's rpm defaults to ~/.rpmdb);
dnf runs with ``--installroot`` and ``--repofrompath``, zypper with ``--root``.
Our side reads the same root with the rpm collector and the repository with
``fetch_rpm``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from patchwarden.agent.collectors import rpm as rpm_collector
from patchwarden.agent.host import LocalHost
from patchwarden.domain.inventory import InstalledPackage
from patchwarden.repos.fetch import Fetched, fetch_rpm
from patchwarden.repos.updates import AvailableUpdate, UpdateIndex
from tests.repos.builders import Rpm, build_rpms, require, rpm_env, run
from tests.repos.repo_server import serve

UPDATEINFO = """<?xml version="1.0" encoding="UTF-8"?>
<updates>
  <update from="security@example.com" status="stable" type="security" version="1">
    <id>PWSA-2024:0001</id>
    <title>Important: pwt-sec security update</title>
    <severity>Important</severity>
    <issued date="2024-01-02 03:04:05"/>
    <references>
      <reference href="https://example.com/CVE-2024-0001" id="CVE-2024-0001" type="cve" title="CVE-2024-0001"/>
    </references>
    <description>fix</description>
    <pkglist><collection short="pw"><name>pw</name>
      <package name="pwt-sec" version="1.0" release="2" epoch="2" arch="{arch}"><filename>pwt-sec-1.0-2.{arch}.rpm</filename></package>
    </collection></pkglist>
  </update>
  <update from="enh@example.com" status="stable" type="enhancement" version="1">
    <id>PWEA-2024:0002</id>
    <title>pwt-sec enhancement</title>
    <issued date="2024-03-04 05:06:07"/>
    <description>new</description>
    <pkglist><collection short="pw"><name>pw</name>
      <package name="pwt-sec" version="1.0" release="3" epoch="2" arch="{arch}"><filename>pwt-sec-1.0-3.{arch}.rpm</filename></package>
    </collection></pkglist>
  </update>
  <update from="bugs@example.com" status="stable" type="bugfix" version="1">
    <id>PWBA-2024:0003</id>
    <title>pwt-data bug fix</title>
    <issued date="2024-02-03 00:00:00"/>
    <description>fix</description>
    <pkglist><collection short="pw"><name>pw</name>
      <package name="pwt-data" version="1.0" release="2" epoch="0" arch="noarch"><filename>pwt-data-1.0-2.noarch.rpm</filename></package>
    </collection></pkglist>
  </update>
</updates>
"""


def installed_rpms(arch: str) -> list[Rpm]:
    return [
        Rpm("pwt-tool", "1.0", "1", arch),
        Rpm("pwt-data", "1.0", "1", "noarch"),
        Rpm("pwt-sec", "1.0", "1", arch, epoch="2"),
        Rpm("pwt-move", "1.0", "1", arch),  # becomes noarch
        Rpm("pwt-old", "2.0", "1", arch),  # the repository has only older
        Rpm("pwt-local", "1.0", "1", arch),  # in no repository
        Rpm("pwt-kern", "1.0", "1", arch),  # two versions installed, like kernels;
        Rpm("pwt-kern", "1.0", "3", arch),  # the repository's 1.0-2 is no update
    ]


def repository_rpms(arch: str) -> list[Rpm]:
    return [
        Rpm("pwt-tool", "1.0", "1", arch),
        Rpm("pwt-tool", "1.1", "1", arch),
        Rpm("pwt-data", "1.0", "2", "noarch"),
        Rpm("pwt-sec", "1.0", "2", arch, epoch="2"),
        Rpm("pwt-sec", "1.0", "3", arch, epoch="2"),
        Rpm("pwt-move", "1.1", "1", "noarch"),
        Rpm("pwt-old", "1.0", "1", arch),
        Rpm("pwt-kern", "1.0", "2", arch),
    ]


@dataclass(frozen=True)
class RpmWorld:
    root: Path
    repo_url: str
    env: dict[str, str]
    arch: str
    work: Path


@pytest.fixture(scope="module")
def rpm_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RpmWorld]:
    require("rpm", "rpmbuild", "createrepo_c", "modifyrepo_c")
    work = tmp_path_factory.mktemp("rpm")
    env = rpm_env(work / "home")
    arch = run(["rpm", "--eval", "%{_arch}"], env=env).strip()
    built = build_rpms(work, installed_rpms(arch) + repository_rpms(arch))
    repo = work / "mirror" / "repo"
    repo.mkdir(parents=True)
    for package in repository_rpms(arch):
        shutil.copy(built[package], repo)
    run(["createrepo_c", "--quiet", str(repo)], env=env)
    updateinfo = work / "updateinfo.xml"
    updateinfo.write_text(UPDATEINFO.format(arch=arch))
    run(["modifyrepo_c", "--mdtype=updateinfo", str(updateinfo), str(repo / "repodata")])
    root = work / "root"
    root.mkdir()
    run(["rpm", "--root", str(root), "--dbpath", "/var/lib/rpm", "--initdb"], env=env)
    run(
        [
            "rpm", "--root", str(root), "--dbpath", "/var/lib/rpm", "--install", "--nodeps",
            *(str(built[package]) for package in installed_rpms(arch)),
        ],
        env=env,
    )  # fmt: skip
    with serve(work / "mirror") as server:
        yield RpmWorld(root, server.url("repo"), env, arch, work)


def we_say(world: RpmWorld) -> dict[str, AvailableUpdate]:
    collected = rpm_collector.collect(LocalHost(str(world.root)))
    assert collected.status == "ok", collected.message
    installed = [InstalledPackage(**p) for p in collected.packages or []]  # type: ignore[arg-type]
    assert len(installed) == len(installed_rpms(world.arch))
    with httpx.Client(timeout=10) as client:
        result = fetch_rpm(world.repo_url, client, name="pw")
    assert isinstance(result, Fetched)
    return {u.name: u for u in UpdateIndex.build([result.snapshot]).updates_for(installed)}


# -- dnf ---------------------------------------------------------------------------------


def dnf(world: RpmWorld, *args: str) -> str:
    argv = [
        "dnf",
        "--installroot", str(world.root),
        "--releasever", "1",
        "--disablerepo=*",
        f"--repofrompath=pw,{world.repo_url}",
        "--setopt=pw.gpgcheck=0",
        "--setopt=reposdir=/dev/null",
        f"--setopt=cachedir={world.work / 'dnf-cache'}",
        "--quiet",
        *args,
    ]  # fmt: skip
    completed = subprocess.run(argv, capture_output=True, text=True, env=world.env, timeout=300)
    # check-update exits 100 when there are updates
    assert completed.returncode in (0, 100), completed.stderr
    return completed.stdout


def test_same_updates_as_dnf_check_update(rpm_world: RpmWorld) -> None:
    require("dnf")
    found = {}
    for line in dnf(rpm_world, "check-update").splitlines():
        words = line.split()
        if len(words) == 3 and words[2] == "pw":
            name, _, arch = words[0].rpartition(".")
            found[name] = (words[1], arch)
    ours = we_say(rpm_world)
    assert found, "dnf found no updates: the sandbox is not set up as intended"
    assert {name: (u.target_version, u.target_arch) for name, u in ours.items()} == found
    assert sorted(found) == ["pwt-data", "pwt-move", "pwt-sec", "pwt-tool"]


def test_same_notices_as_dnf_updateinfo(rpm_world: RpmWorld) -> None:
    """``dnf updateinfo list --updates``: the advisories of versions newer than
    the installed ones; ours are the same, per package."""
    require("dnf")
    # "PWSA-2024:0001 Important/Sec. pwt-sec-2:1.0-2.x86_64"
    found = set()
    for line in dnf(rpm_world, "updateinfo", "list", "--updates").splitlines():
        words = line.split()
        if len(words) >= 3 and words[0].startswith("PW"):
            found.add((words[0], re.sub(r"-(\d+:)?[^-]+-[^-]+$", "", words[-1])))
    ours = we_say(rpm_world)
    assert {(notice, name) for name, u in ours.items() for notice in u.notice_ids} == found
    sec = ours["pwt-sec"]
    assert (sec.classification, sec.severity, sec.cve_ids) == (
        "security",
        "important",
        ("CVE-2024-0001",),
    )
    assert ours["pwt-data"].classification == "bugfix"
    assert ours["pwt-tool"].classification == "unclassified"


# -- zypper ------------------------------------------------------------------------------


def zypper(world: RpmWorld, *args: str) -> str:
    return run(
        ["zypper", "--root", str(world.root), "--non-interactive", "--no-gpg-checks", *args],
        env=world.env,
    )


@pytest.fixture(scope="module")
def zypper_repo(rpm_world: RpmWorld) -> RpmWorld:
    require("zypper")
    zypper(rpm_world, "--quiet", "addrepo", "--no-gpgcheck", rpm_world.repo_url, "pw")
    zypper(rpm_world, "--quiet", "refresh")
    return rpm_world


def test_same_updates_as_zypper(zypper_repo: RpmWorld) -> None:
    document = ET.fromstring(zypper(zypper_repo, "--xmlout", "list-updates"))
    found = {
        update.get("name"): (update.get("edition-old"), update.get("edition"), update.get("arch"))
        for update in document.iter("update")
    }
    ours = we_say(zypper_repo)
    assert found, "zypper found no updates: the sandbox is not set up as intended"
    assert {
        name: (u.installed_version, u.target_version, u.target_arch) for name, u in ours.items()
    } == found


def test_same_patches_as_zypper(zypper_repo: RpmWorld) -> None:
    """Applicable patches: "needed", or "optional" (zypper's word for needed
    enhancements, which it lists only with --with-optional)."""
    document = ET.fromstring(zypper(zypper_repo, "--xmlout", "list-patches", "--with-optional"))
    applicable = {
        patch.get("name"): (patch.get("category"), patch.get("severity") or "")
        for patch in document.iter("update")
        if patch.get("status") in ("needed", "optional")
    }
    ours = we_say(zypper_repo)
    assert {notice for u in ours.values() for notice in u.notice_ids} == set(applicable)
    assert applicable == {
        "PWSA-2024:0001": ("security", "important"),
        "PWEA-2024:0002": ("enhancement", ""),
        "PWBA-2024:0003": ("bugfix", ""),
    }
