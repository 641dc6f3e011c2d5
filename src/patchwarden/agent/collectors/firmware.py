"""BIOS/UEFI and system identity from DMI, and device firmware from fwupd."""

from __future__ import annotations

import json
from typing import Any, Dict, List

from patchwarden.agent.collectors._dmi import read_dmi
from patchwarden.agent.collectors.base import CollectorOutput, ok, skipped, try_run
from patchwarden.agent.host import Host

# facts["firmware"] key -> DMI (sysfs) name
FIRMWARE_FIELDS = {
    "bios_vendor": "bios_vendor",
    "bios_version": "bios_version",
    "bios_date": "bios_date",
    "system_vendor": "sys_vendor",
    "system_product": "product_name",
    "system_serial": "product_serial",
}


def parse_fwupd_devices(text: str) -> List[Dict[str, str]]:
    """[{name, version, vendor}] for devices with a firmware version, from
    `fwupdmgr get-devices --json`."""
    data: Any = json.loads(text)
    devices: List[Dict[str, str]] = []
    if not isinstance(data, dict):
        return devices
    for device in data.get("Devices") or ():
        if not isinstance(device, dict):
            continue
        name, version = device.get("Name"), device.get("Version")
        if not isinstance(name, str) or not isinstance(version, str) or not version:
            continue
        entry = {"name": name, "version": version}
        if isinstance(device.get("Vendor"), str):
            entry["vendor"] = device["Vendor"]
        devices.append(entry)
    return devices


def collect(host: Host) -> CollectorOutput:
    if not host.is_live:
        return skipped("not a live host: firmware belongs to the running machine")
    dmi = read_dmi(host)
    firmware: Dict[str, Any] = {}
    for fact, name in FIRMWARE_FIELDS.items():
        if name in dmi:
            firmware[fact] = dmi[name]
    notes: List[str] = []
    if host.which("fwupdmgr"):
        result = try_run(host, ["fwupdmgr", "get-devices", "--json"], timeout=60.0)
        if result is not None and result.returncode == 0:
            try:
                firmware["fwupd_devices"] = parse_fwupd_devices(result.stdout)
            except ValueError as exc:
                notes.append("cannot parse fwupdmgr output: %s" % exc)
        else:
            notes.append("fwupdmgr get-devices failed")
    if not firmware:
        notes.insert(0, "no DMI data (no /sys/class/dmi/id, dmidecode absent or failing)")
        return skipped("; ".join(notes))
    return ok({"firmware": firmware}, message="; ".join(notes))
