"""Host identity and kernel: hostname, fqdn, machine id, kernel, arch, boot
time and whether a reboot is pending.

On a live host the running kernel is asked (/proc, uname). For a sandbox or
image root nothing is running, so we read what the root would boot with:
/etc/hostname and the newest kernel it has modules for.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional, Tuple

from patchwarden.agent.collectors.base import CollectorOutput, first_line, ok, try_run
from patchwarden.agent.host import Host

MACHINE_ID_PATHS = ("/etc/machine-id", "/var/lib/dbus/machine-id")
REBOOT_FLAG_PATHS = ("/run/reboot-required", "/var/run/reboot-required")
MODULE_DIRS = ("/lib/modules", "/usr/lib/modules")
_MACHINE_ID_RE = re.compile(r"^[0-9a-f]{32}$")


def _version_key(text: str) -> Tuple[Tuple[int, Any], ...]:
    """Natural sort key: "6.1.0-18" sorts after "6.1.0-9"."""
    parts = re.findall(r"\d+|[^\d]+", text)
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts)


def newest_kernel(host: Host) -> Optional[str]:
    """The newest kernel release installed in the root (uname -r style)."""
    releases: List[str] = []
    for directory in MODULE_DIRS:
        releases.extend(host.list_dir(directory) or ())
    if not releases:
        for name in host.list_dir("/boot") or ():
            if name.startswith("vmlinuz-"):
                releases.append(name[len("vmlinuz-") :])
    if not releases:
        return None
    return max(releases, key=_version_key)


def _hostname_from_file(text: Optional[str]) -> Optional[str]:
    for line in (text or "").split("\n"):
        line = line.split("#", 1)[0].strip()
        if line:
            return line
    return None


def _machine_id(host: Host) -> Optional[str]:
    for path in MACHINE_ID_PATHS:
        value = first_line(host.read_text(path))
        # "uninitialized" and empty files mean first boot has not happened yet.
        if value and _MACHINE_ID_RE.match(value):
            return value
    return None


def _boot_time(host: Host) -> Optional[str]:
    for line in (host.read_text("/proc/stat") or "").split("\n"):
        if line.startswith("btime "):
            try:
                seconds = int(line.split()[1])
            except (IndexError, ValueError):
                return None
            return datetime.fromtimestamp(seconds, timezone.utc).isoformat()
    return None


def _reboot_required(host: Host) -> Optional[bool]:
    for path in REBOOT_FLAG_PATHS:
        if host.read_text(path) is not None:
            return True
    if host.is_live and host.which("needs-restarting"):
        result = try_run(host, ["needs-restarting", "-r"])
        if result is not None and result.returncode in (0, 1):
            return result.returncode == 1  # documented: 1 = reboot needed
    if host.list_dir("/var/lib/dpkg") is not None:
        # Debian family: the flag file is the convention, so its absence is a "no".
        return False
    return None


def collect(host: Host) -> CollectorOutput:
    facts: Dict[str, Any] = {}
    notes: List[str] = []
    if host.is_live:
        facts["hostname"] = first_line(host.read_text("/proc/sys/kernel/hostname"))
        if not facts["hostname"]:
            result = try_run(host, ["hostname"])
            if result is not None and result.returncode == 0:
                facts["hostname"] = first_line(result.stdout)
        result = try_run(host, ["hostname", "-f"])
        if result is not None and result.returncode == 0:
            facts["fqdn"] = first_line(result.stdout)
        else:
            notes.append("hostname -f failed")
        result = try_run(host, ["uname", "-r", "-m"])
        words = result.stdout.split() if result is not None and result.returncode == 0 else []
        if len(words) == 2:
            facts["kernel"], facts["arch"] = words
        else:
            facts["kernel"] = first_line(host.read_text("/proc/sys/kernel/osrelease"))
            notes.append("uname -r -m failed")
        facts["boot_time"] = _boot_time(host)
    else:
        facts["hostname"] = _hostname_from_file(host.read_text("/etc/hostname"))
        facts["kernel"] = newest_kernel(host)
    facts["machine_id"] = _machine_id(host)
    facts["reboot_required"] = _reboot_required(host)
    return ok({k: v for k, v in facts.items() if v is not None}, message="; ".join(notes))
