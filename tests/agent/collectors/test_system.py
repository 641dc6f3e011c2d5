from __future__ import annotations

import os
import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest

from patchwarden.agent.collectors import system
from patchwarden.agent.host import LocalHost
from tests.agent.fakes import FakeHost, make_sandbox_root, result, write_file


def test_sandbox_root(tmp_path: Path) -> None:
    root = make_sandbox_root(tmp_path)
    output = system.collect(LocalHost(str(root)))
    assert output.status == "ok"
    assert output.facts == {
        "hostname": "sandbox-host",
        "kernel": "6.1.0-18-amd64",  # newest by version, not by string order
        "machine_id": "0123456789abcdef0123456789abcdef",
        "reboot_required": False,  # Debian family without the flag file
    }


def test_sandbox_reboot_flag_and_boot_kernels(tmp_path: Path) -> None:
    write_file(tmp_path, "/etc/hostname", "img\n")
    write_file(tmp_path, "/run/reboot-required", "")
    for name in ("vmlinuz-5.14.0-70.el9.x86_64", "vmlinuz-5.14.0-362.el9.x86_64", "config-x"):
        write_file(tmp_path, "/boot/" + name, "")
    write_file(tmp_path, "/etc/machine-id", "uninitialized\n")
    output = system.collect(LocalHost(str(tmp_path)))
    assert output.facts == {
        "hostname": "img",
        "kernel": "5.14.0-362.el9.x86_64",
        "reboot_required": True,
    }  # no machine_id: "uninitialized" is not one


def test_live_host_matches_the_kernel() -> None:
    output = system.collect(LocalHost("/"))
    assert output.status == "ok"
    facts = output.facts
    uname = os.uname()
    assert facts["hostname"] == socket.gethostname()
    assert facts["kernel"] == uname.release
    assert facts["arch"] == uname.machine
    boot = datetime.fromisoformat(facts["boot_time"])
    assert boot.tzinfo == UTC
    assert boot < datetime.now(UTC)
    machine_id = Path("/etc/machine-id")
    if machine_id.exists() and len(machine_id.read_text().strip()) == 32:
        assert facts["machine_id"] == machine_id.read_text().strip()
    assert isinstance(facts.get("reboot_required", False), bool)


def _live_fake() -> FakeHost:
    return FakeHost(
        files={
            "/proc/sys/kernel/hostname": "web1\n",
            "/proc/stat": "cpu  1 2 3\nbtime 1700000000\nprocesses 5\n",
            "/etc/machine-id": "0123456789abcdef0123456789abcdef\n",
        },
        commands={
            ("uname", "-r", "-m"): result("5.14.0-362.el9.x86_64 x86_64\n"),
            ("hostname", "-f"): result("web1.example.com\n"),
        },
    )


def test_live_fake_host() -> None:
    output = system.collect(_live_fake())
    assert output.facts == {
        "hostname": "web1",
        "fqdn": "web1.example.com",
        "kernel": "5.14.0-362.el9.x86_64",
        "arch": "x86_64",
        "boot_time": "2023-11-14T22:13:20+00:00",
        "machine_id": "0123456789abcdef0123456789abcdef",
    }  # reboot_required unknown: no flag file, no dpkg, no needs-restarting
    assert output.message == ""


@pytest.mark.parametrize(("exit_code", "expected"), [(1, True), (0, False)])
def test_needs_restarting(exit_code: int, expected: bool) -> None:
    host = _live_fake()
    host.commands[("needs-restarting", "-r")] = result("", returncode=exit_code)
    host.programs.add("needs-restarting")
    assert system.collect(host).facts["reboot_required"] is expected


def test_fqdn_failure_is_tolerated() -> None:
    host = _live_fake()
    host.commands[("hostname", "-f")] = result("", returncode=1, stderr="Name or service not known")
    output = system.collect(host)
    assert output.status == "ok"
    assert "fqdn" not in output.facts
    assert output.facts["hostname"] == "web1"
    assert "hostname -f failed" in output.message
