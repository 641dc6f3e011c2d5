from __future__ import annotations

import json
from pathlib import Path

from patchwarden.agent.collectors import firmware
from patchwarden.agent.host import LocalHost
from tests.agent.fakes import FakeHost, result

DMI = "/sys/class/dmi/id/"

# Trimmed `fwupdmgr get-devices --json` output (fwupd 1.9).
FWUPD_JSON = {
    "Devices": [
        {
            "Name": "System Firmware",
            "DeviceId": "a45df35ac0e948ee180fe216a5f703f32dda163f",
            "Version": "0.1.27",
            "Vendor": "LENOVO",
        },
        {"Name": "UEFI dbx", "Version": "371", "Vendor": "UEFI:Microsoft"},
        {"Name": "Thunderbolt host", "Vendor": "Intel"},  # no version: nothing to patch
        {"Name": "Embedded Controller", "Version": "0.1.20"},
    ]
}


def test_sysfs_dmi_and_fwupd() -> None:
    host = FakeHost(
        files={
            DMI + "bios_vendor": "LENOVO\n",
            DMI + "bios_version": "N2HET77W (1.60 )\n",
            DMI + "bios_date": "02/06/2024\n",
            DMI + "sys_vendor": "LENOVO\n",
            DMI + "product_name": "20QDCTO1WW\n",
            # product_serial is root-only in sysfs: dmidecode fills the gap.
        },
        commands={
            ("dmidecode", "-s", "system-serial-number"): result("PF1ABCDE\n"),
            ("dmidecode", "-s", "chassis-asset-tag"): result("No Asset Tag\n"),
            ("fwupdmgr", "get-devices", "--json"): result(json.dumps(FWUPD_JSON)),
        },
    )
    output = firmware.collect(host)
    assert output.status == "ok"
    assert output.facts == {
        "firmware": {
            "bios_vendor": "LENOVO",
            "bios_version": "N2HET77W (1.60 )",
            "bios_date": "02/06/2024",
            "system_vendor": "LENOVO",
            "system_product": "20QDCTO1WW",
            "system_serial": "PF1ABCDE",
            "fwupd_devices": [
                {"name": "System Firmware", "version": "0.1.27", "vendor": "LENOVO"},
                {"name": "UEFI dbx", "version": "371", "vendor": "UEFI:Microsoft"},
                {"name": "Embedded Controller", "version": "0.1.20"},
            ],
        }
    }


def test_dmidecode_without_tables_is_tolerated() -> None:
    host = FakeHost(
        commands={
            ("dmidecode", "-s", "bios-vendor"): result(
                "# No SMBIOS nor DMI entry point found, sorry.\n", returncode=1
            )
        }
    )
    output = firmware.collect(host)
    assert output.status == "skipped"
    assert "no DMI data" in output.message
    # It gave up after the first failure instead of trying every keyword.
    assert [c for c in host.calls if c[0] == "dmidecode"] == [("dmidecode", "-s", "bios-vendor")]


def test_fwupd_failure_is_a_note() -> None:
    host = FakeHost(
        files={DMI + "bios_vendor": "SeaBIOS\n"},
        commands={("fwupdmgr", "get-devices", "--json"): result("", returncode=2)},
    )
    output = firmware.collect(host)
    assert output.status == "ok"
    assert output.facts == {"firmware": {"bios_vendor": "SeaBIOS"}}
    assert "fwupdmgr get-devices failed" in output.message


def test_skipped_on_a_sandbox_root(tmp_path: Path) -> None:
    output = firmware.collect(LocalHost(str(tmp_path)))
    assert output.status == "skipped"
    assert "not a live host" in output.message


def test_live_host_reads_sysfs_when_present() -> None:
    output = firmware.collect(LocalHost("/"))
    vendor = Path(DMI + "bios_vendor")
    if vendor.exists():
        assert output.status == "ok"
        assert output.facts["firmware"]["bios_vendor"] == vendor.read_text().strip()
    else:  # containers and some VMs have no DMI in sysfs
        assert output.status in ("ok", "skipped")
        assert output.status == "skipped" or output.facts["firmware"]
