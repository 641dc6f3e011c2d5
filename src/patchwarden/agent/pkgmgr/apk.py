"""Alpine through apk.

There is no apk tool on the machines these tests run on, so this back-end
is tested only for the commands it builds and the input it refuses (with a
recording stand-in for `apk`), not against real packages.

Commands (`--root ROOT` only for a sandbox root; apk resolves every path,
keys and repositories included, inside it):

    install       apk --no-progress --root ROOT add NAME=VERSION ...
    check         apk --no-progress --root ROOT add --simulate NAME=VERSION ...
    install_files apk --no-progress --root ROOT add --allow-untrusted /abs/FILE.apk ...
    remove        apk --no-progress --root ROOT del NAME ...
    refresh       apk --no-progress --root ROOT update

`add NAME=VERSION` moves the package to that version either way, and
records the pin in /etc/apk/world: later `apk upgrade` runs keep the
version until someone adds the plain name again. `--allow-untrusted` is
passed only for local files (a kept or cached .apk the operator already
trusted); repository packages are always signature-checked. apk cannot
rebuild an installed package, so repack() returns None.
"""

from __future__ import annotations

import glob
import os
import re
from typing import Dict, Iterable, List, Optional, Sequence

from patchwarden.agent.collectors import apk as apk_collector
from patchwarden.agent.pkgmgr.base import (
    COMMON_TRANSIENT,
    Change,
    InvalidPackageSpec,
    PackageManager,
    Plan,
    Result,
    Target,
    flock_held,
    validate_files,
    validate_name,
    validate_names,
    validate_targets,
    validate_version,
)

INSTALLED_PATH = apk_collector.INSTALLED_PATH
LOCK_PATHS = ("/lib/apk/db/lock", "/run/apk/db.lock")  # apk 2, apk 3
CACHE_DIRS = ("/etc/apk/cache", "/var/cache/apk")
REBOOT_FLAGS = ("/run/reboot-required", "/var/run/reboot-required")
APK_VERSION_RE = re.compile(r"^[^-]+-r[0-9]+$")

# "(1/2) Upgrading musl (1.2.4-r1 -> 1.2.4-r2)", "(2/2) Installing foo (1.0-r0)",
# "(1/1) Purging foo (1.0-r0)"
SIMULATE_RE = re.compile(
    r"^\(\d+/\d+\) (?P<verb>Installing|Upgrading|Downgrading|Replacing|Reinstalling|Purging)"
    r" (?P<name>\S+) \((?P<first>[^\s)]+)(?: -> (?P<second>[^\s)]+))?\)",
    re.MULTILINE,
)
VERBS = {
    "Installing": "install",
    "Upgrading": "upgrade",
    "Downgrading": "downgrade",
    "Replacing": "reinstall",
    "Reinstalling": "reinstall",
    "Purging": "remove",
}


def validate_apk_version(version: str) -> str:
    validate_version(version)
    if not APK_VERSION_RE.fullmatch(version):
        raise InvalidPackageSpec(
            "refusing apk version %r: an exact apk version ends in -rN" % version
        )
    return version


def parse_simulation(text: str) -> List[Change]:
    """Changes from `apk add --simulate` output."""
    changes: List[Change] = []
    for match in SIMULATE_RE.finditer(text):
        action = VERBS[match.group("verb")]
        first, second = match.group("first"), match.group("second")
        if action == "remove":
            changes.append(Change(action, match.group("name"), None, first))
        elif second is not None:
            changes.append(Change(action, match.group("name"), second, first))
        else:
            old = first if action == "reinstall" else None
            changes.append(Change(action, match.group("name"), first, old))
    return changes


class ApkManager(PackageManager):
    name = "apk"
    file_suffix = ".apk"
    transient_messages = (
        *COMMON_TRANSIENT,
        "Unable to lock database",
        "temporary error",
        "network error",
        "could not connect to server",
        "DNS lookup error",
    )

    def apk(self) -> List[str]:
        argv = ["apk", "--no-progress"]
        if self.is_sandbox:
            argv += ["--root", self.root]
        return argv

    @staticmethod
    def spec(target: Target) -> str:
        # apk picks the architecture from the root's configuration, not per package.
        return "%s=%s" % (target.name, validate_apk_version(target.version))

    def installed(self, names: Optional[Iterable[str]] = None) -> Dict[str, str]:
        wanted = None if names is None else set(validate_names(names))
        try:
            with open(self.path(INSTALLED_PATH), encoding="utf-8", errors="replace") as handle:
                text = handle.read()
        except FileNotFoundError:
            return {}
        versions: Dict[str, str] = {}
        for package in apk_collector.parse_installed(text):
            name = str(package["name"])
            if wanted is None or name in wanted:
                versions[name] = str(package["version"])
        return versions

    def refresh(self) -> Result:
        return self.run([*self.apk(), "update"])

    def install(self, targets: Sequence[Target]) -> Result:
        specs = [self.spec(t) for t in validate_targets(targets)]
        return self.run([*self.apk(), "add", *specs])

    def check(self, targets: Sequence[Target]) -> Plan:
        specs = [self.spec(t) for t in validate_targets(targets)]
        result = self.run([*self.apk(), "add", "--simulate", *specs], timeout=600.0)
        return Plan(tuple(parse_simulation(result.stdout)) if result.ok else (), result)

    def install_files(self, paths: Sequence[str]) -> Result:
        files = validate_files(paths, self.file_suffix)
        return self.run([*self.apk(), "add", "--allow-untrusted", *files])

    def remove(self, names: Sequence[str]) -> Result:
        return self.run([*self.apk(), "del", *validate_names(names)])

    def cached_package_file(
        self, name: str, version: str, arch: Optional[str] = None
    ) -> Optional[str]:
        """NAME-VERSION.<checksum>.apk in apk's cache (enabled by `setup-apkcache`)."""
        stem = "%s-%s." % (validate_name(name), validate_apk_version(version))
        for directory in CACHE_DIRS:
            pattern = os.path.join(glob.escape(self.path(directory)), glob.escape(stem) + "*.apk")
            found = sorted(glob.glob(pattern))
            if found:
                return found[0]
        return None

    def repack(self, name: str, dest_dir: str, arch: Optional[str] = None) -> Optional[str]:
        """Always None: apk has no way to rebuild an installed package."""
        validate_name(name)
        return None

    def lock_held(self) -> bool:
        # apk takes a flock(), not a POSIX lock.
        return any(flock_held(self.path(path)) for path in LOCK_PATHS)

    def reboot_required(self) -> bool:
        """Alpine has no reboot convention of its own; only the flag files."""
        return any(os.path.exists(self.path(flag)) for flag in REBOOT_FLAGS)
