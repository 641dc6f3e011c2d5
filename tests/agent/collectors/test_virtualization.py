from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from patchwarden.agent.collectors import virtualization
from patchwarden.agent.collectors.virtualization import cloud_provider
from patchwarden.agent.host import LocalHost
from tests.agent.fakes import FakeHost, result

DMI = "/sys/class/dmi/id/"


def _host(virt: str, dmi: dict[str, str], exit_code: int = 0) -> FakeHost:
    return FakeHost(
        files={DMI + name: value + "\n" for name, value in dmi.items()},
        commands={("systemd-detect-virt",): result(virt + "\n", returncode=exit_code)},
    )


def test_bare_metal() -> None:
    output = virtualization.collect(_host("none", {"sys_vendor": "Dell Inc."}, exit_code=1))
    assert output.status == "ok"
    assert output.facts == {"virtualization": "none", "cloud_provider": None}


@pytest.mark.parametrize(
    ("virt", "dmi", "provider"),
    [
        ("amazon", {"sys_vendor": "Amazon EC2", "product_name": "m5.large"}, "aws"),
        ("xen", {"sys_vendor": "Xen", "bios_version": "4.11.amazon"}, "aws"),
        ("kvm", {"sys_vendor": "Google", "product_name": "Google Compute Engine"}, "gcp"),
        (
            "microsoft",
            {
                "sys_vendor": "Microsoft Corporation",
                "product_name": "Virtual Machine",
                "chassis_asset_tag": "7783-7084-3265-9085-8269-3286-77",
            },
            "azure",
        ),
        ("kvm", {"sys_vendor": "Hetzner", "product_name": "vServer"}, "hetzner"),
        ("kvm", {"sys_vendor": "DigitalOcean", "product_name": "Droplet"}, "digitalocean"),
        (
            "kvm",
            {"sys_vendor": "OpenStack Foundation", "product_name": "OpenStack Nova"},
            "openstack",
        ),
        ("kvm", {"sys_vendor": "QEMU", "product_name": "Standard PC (Q35 + ICH9, 2009)"}, None),
    ],
)
def test_cloud_providers(virt: str, dmi: dict[str, str], provider: str | None) -> None:
    output = virtualization.collect(_host(virt, dmi))
    assert output.facts == {"virtualization": virt, "cloud_provider": provider}


def test_hyperv_guest_without_readable_asset_tag_counts_as_azure() -> None:
    dmi = {"sys_vendor": "Microsoft Corporation", "product_name": "Virtual Machine"}
    assert cloud_provider(dmi) == "azure"


def test_container_marker_when_tool_missing() -> None:
    output = virtualization.collect(FakeHost(files={"/.dockerenv": ""}))
    assert output.facts == {"virtualization": "docker", "cloud_provider": None}
    assert "systemd-detect-virt absent" in output.message


def test_skipped_when_nothing_known(tmp_path: Path) -> None:
    assert virtualization.collect(FakeHost()).status == "skipped"
    sandbox = virtualization.collect(LocalHost(str(tmp_path)))
    assert sandbox.status == "skipped"
    assert "not a live host" in sandbox.message


@pytest.mark.skipif(
    shutil.which("systemd-detect-virt") is None, reason="systemd-detect-virt is not installed"
)
def test_live_host() -> None:
    completed = subprocess.run(["systemd-detect-virt"], capture_output=True, text=True)
    output = virtualization.collect(LocalHost("/"))
    assert output.status == "ok"
    assert output.facts["virtualization"] == completed.stdout.strip()
