from __future__ import annotations

import platform
from pathlib import Path

import pytest

from patchwarden.agent.collectors import os_release
from patchwarden.agent.collectors.os_release import parse_os_release
from patchwarden.agent.host import LocalHost
from tests.agent.fakes import FakeHost, make_sandbox_root


def test_quoting_rules() -> None:
    text = "\n".join(
        [
            "# a comment",
            "",
            "ID=fedora",
            'NAME="Fedora Linux"',
            "VERSION='40 (Workstation Edition)'",
            r'PRETTY_NAME="Say \"hi\" for \$5 \`now\` \\ back\slash"',
            r"SINGLE='no \"escapes\" in $single quotes'",
            r"UNQUOTED=a\ b",
            'ID_LIKE="rhel centos"',
            "VARIANT_ID=workstation # trailing comment",
            "  INDENTED=yes  ",
            'BROKEN="never closed',
            "lower_case=allowed",
            "1BAD=not a key",
            "NO_EQUALS_SIGN",
            "EMPTY=",
            'CONCAT="a"b',
        ]
    )
    assert parse_os_release(text) == {
        "ID": "fedora",
        "NAME": "Fedora Linux",
        "VERSION": "40 (Workstation Edition)",
        "PRETTY_NAME": 'Say "hi" for $5 `now` \\ back\\slash',
        "SINGLE": r"no \"escapes\" in $single quotes",
        "UNQUOTED": "a b",
        "ID_LIKE": "rhel centos",
        "VARIANT_ID": "workstation",
        "INDENTED": "yes",
        "lower_case": "allowed",
        "EMPTY": "",
        "CONCAT": "ab",
    }


def test_sandbox_root_with_debian_version(tmp_path: Path) -> None:
    output = os_release.collect(LocalHost(str(make_sandbox_root(tmp_path))))
    assert output.status == "ok"
    assert output.facts == {
        "os": {
            "id": "debian",
            "version_id": "12",
            "name": "Debian GNU/Linux",
            "pretty_name": "Debian GNU/Linux 12 (bookworm)",
            "version_codename": "bookworm",
            "release": "12.5",
        }
    }


def test_falls_back_to_usr_lib_os_release() -> None:
    host = FakeHost(
        files={
            "/usr/lib/os-release": 'ID=alpine\nVERSION_ID=3.19.1\nNAME="Alpine Linux"\n',
            "/etc/alpine-release": "3.19.1\n",
        }
    )
    output = os_release.collect(host)
    assert output.status == "ok"
    assert output.facts["os"] == {
        "id": "alpine",
        "version_id": "3.19.1",
        "name": "Alpine Linux",
        "release": "3.19.1",
    }
    assert "/usr/lib/os-release" in output.message


def test_redhat_release_line() -> None:
    host = FakeHost(
        files={
            "/etc/os-release": 'ID="rhel"\nID_LIKE="fedora"\nVERSION_ID="9.3"\n',
            "/etc/redhat-release": "Red Hat Enterprise Linux release 9.3 (Plow)\n",
        }
    )
    facts = os_release.collect(host).facts["os"]
    assert facts["id_like"] == "fedora"
    assert facts["release"] == "Red Hat Enterprise Linux release 9.3 (Plow)"


def test_ubuntu_debian_version_is_a_codename_not_a_release() -> None:
    host = FakeHost(
        files={
            "/etc/os-release": 'ID=ubuntu\nID_LIKE=debian\nVERSION_ID="22.04"\n',
            "/etc/debian_version": "bookworm/sid\n",
        }
    )
    assert os_release.collect(host).facts["os"] == {
        "id": "ubuntu",
        "id_like": "debian",
        "version_id": "22.04",
    }


def test_skipped_when_nothing_present() -> None:
    output = os_release.collect(FakeHost())
    assert output.status == "skipped"
    assert "os-release" in output.message


def test_live_host_agrees_with_platform_module() -> None:
    try:
        reference = platform.freedesktop_os_release()
    except OSError:
        pytest.skip("this machine has no os-release file")
    facts = os_release.collect(LocalHost("/")).facts["os"]
    for key, fact in os_release.FIELDS.items():
        assert facts.get(fact) == (reference.get(key) or None)
