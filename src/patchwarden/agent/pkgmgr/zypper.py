"""SUSE family through zypper (rpm-level parts shared with dnf, see dnf.py).

Commands (`--root ROOT` only for a sandbox root; zypper then uses the
root's repositories in ROOT/etc/zypp/repos.d and its cache):

    install       zypper --non-interactive --root ROOT install --name --oldpackage
                      NAME[.ARCH]=[EPOCH:]VERSION-RELEASE ...
    check         zypper --non-interactive --root ROOT --xmlout install --dry-run
                      --name --oldpackage ...
    install_files rpm --root ROOT --dbpath DB -U --oldpackage --replacepkgs /abs/FILE.rpm ...
    remove        zypper --non-interactive --root ROOT remove --name NAME ...
    refresh       zypper --non-interactive --root ROOT refresh

`--name` selects packages by name only: without it zypper falls back to
"capabilities" and could pick another package that provides NAME=VERSION.
`--oldpackage` allows the downgrade. Local files go through rpm, because
zypper in non-interactive mode aborts on an unsigned file (a kept or
vendor-cached file is what a rollback uses). Check mode reads the
<install-summary> of zypper's XML output.

zypper keeps downloaded packages (ROOT/var/cache/zypp/packages/ALIAS/...)
only for repositories with keeppackages=1 (`zypper modifyrepo --keep-packages`).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import List, Sequence

from patchwarden.agent.pkgmgr.base import (
    Change,
    Plan,
    Result,
    Target,
    pid_file_held,
    validate_names,
    validate_targets,
)
from patchwarden.agent.pkgmgr.dnf import RPM_TRANSIENT, RpmBackend, validate_rpm_version

# zypper's exit codes: 7 = ZYPPER_EXIT_ZYPP_LOCKED (another process has the lock).
ZYPP_LOCKED = 7
PID_LOCKS = ("/run/zypp.pid", "/var/run/zypp.pid")
SUMMARY_SECTIONS = {
    "to-install": "install",
    "to-upgrade": "upgrade",
    "to-downgrade": "downgrade",
    "to-reinstall": "reinstall",
    "to-remove": "remove",
}


def parse_install_summary(xml_text: str) -> List[Change]:
    """Changes from the <install-summary> of `zypper --xmlout ... --dry-run`."""
    try:
        # zypper's own output on this host, not data from outside.
        document = ET.fromstring(xml_text)  # noqa: S314
    except ET.ParseError:
        return []
    changes: List[Change] = []
    for summary in document.iter("install-summary"):
        for section in summary:
            action = SUMMARY_SECTIONS.get(section.tag)
            if action is None:
                continue
            for solvable in section.iter("solvable"):
                if solvable.get("type", "package") != "package":
                    continue  # patches, patterns and products are not packages
                name = solvable.get("name") or ""
                arch = solvable.get("arch")
                if action == "remove":
                    changes.append(Change(action, name, None, solvable.get("edition"), arch))
                else:
                    changes.append(
                        Change(
                            action,
                            name,
                            solvable.get("edition"),
                            solvable.get("edition-old"),
                            arch,
                        )
                    )
    return changes


class ZypperManager(RpmBackend):
    name = "zypper"
    cache_dirs = ("/var/cache/zypp/packages",)
    transient_exit_codes = (ZYPP_LOCKED,)
    transient_messages = (
        *RPM_TRANSIENT,
        "System management is locked",
        "Download (curl) error",
        "Valid metadata not found",
        "Some of the repositories have not been refreshed",
        "Failed to retrieve",
        "Timeout exceeded",
    )
    reboot_commands = (
        (("zypper", "needs-rebooting"), 102, 0),  # ZYPPER_EXIT_INF_REBOOT_NEEDED
        (("needs-restarting", "-r"), 1, 0),
    )

    def zypper(self) -> List[str]:
        argv = ["zypper", "--non-interactive"]
        if self.is_sandbox:
            argv += ["--root", self.root]
        return argv

    def spec(self, target: Target) -> str:
        validate_rpm_version(target.version)
        name = target.name if target.arch is None else "%s.%s" % (target.name, target.arch)
        return "%s=%s" % (name, target.version)

    def refresh(self) -> Result:
        return self.run([*self.zypper(), "refresh"])

    def install(self, targets: Sequence[Target]) -> Result:
        specs = [self.spec(t) for t in validate_targets(targets)]
        return self.run([*self.zypper(), "install", "--name", "--oldpackage", *specs])

    def check(self, targets: Sequence[Target]) -> Plan:
        specs = [self.spec(t) for t in validate_targets(targets)]
        argv = [*self.zypper(), "--xmlout", "install", "--dry-run", "--name", "--oldpackage"]
        result = self.run([*argv, *specs], timeout=min(self.timeout, 600.0))
        changes = tuple(parse_install_summary(result.stdout)) if result.ok else ()
        return Plan(changes, result)

    def install_files(self, paths: Sequence[str]) -> Result:
        return self.rpm_install_files(paths)

    def remove(self, names: Sequence[str]) -> Result:
        return self.run([*self.zypper(), "remove", "--name", *validate_names(names)])

    def lock_files(self) -> List[str]:
        # libzypp takes a POSIX lock on its pid file while it works.
        return [*super().lock_files(), *(self.path(p) for p in PID_LOCKS)]

    def lock_held(self) -> bool:
        return super().lock_held() or any(pid_file_held(self.path(p)) for p in PID_LOCKS)
