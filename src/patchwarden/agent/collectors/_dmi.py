"""SMBIOS/DMI strings of a live host, shared by the firmware and
virtualization collectors (not a collector itself)."""

from __future__ import annotations

from typing import Dict

from patchwarden.agent.collectors.base import first_line, try_run
from patchwarden.agent.host import Host

SYSFS_DIR = "/sys/class/dmi/id"

# sysfs file name -> dmidecode -s keyword for the same string
DMI_KEYWORDS = {
    "bios_vendor": "bios-vendor",
    "bios_version": "bios-version",
    "bios_date": "bios-release-date",
    "sys_vendor": "system-manufacturer",
    "product_name": "system-product-name",
    "product_serial": "system-serial-number",
    "chassis_asset_tag": "chassis-asset-tag",
}


def read_dmi(host: Host) -> Dict[str, str]:
    """DMI strings by sysfs name; missing or unreadable ones are left out.

    sysfs first (no privileges needed except for the serial); dmidecode fills
    the gaps when it is installed and allowed to read the tables. Only a live
    host has firmware tables: a sandbox root's /sys is not its own.
    """
    values: Dict[str, str] = {}
    if not host.is_live:
        return values
    for name in DMI_KEYWORDS:
        value = first_line(host.read_text("%s/%s" % (SYSFS_DIR, name)))
        if value:
            values[name] = value
    missing = [name for name in DMI_KEYWORDS if name not in values]
    if missing and host.which("dmidecode"):
        for name in missing:
            result = try_run(host, ["dmidecode", "-s", DMI_KEYWORDS[name]])
            if result is None or result.returncode != 0:
                break  # no tables or no permission: the other keywords fail the same way
            # dmidecode prints "# ..." comment lines when a table is absent.
            lines = [ln.strip() for ln in result.stdout.split("\n") if ln.strip()]
            lines = [ln for ln in lines if not ln.startswith("#")]
            if lines:
                values[name] = lines[0]
    return values
