"""RPM family through dnf; the rpm-level parts zypper shares live here too
(`RpmBackend`: the rpm database, its lock, the download caches, reboots).

Commands (ROOT options only for a sandbox root):

    install       dnf <root options> --setopt=exit_on_lock=True -y --setopt=keepcache=True
                      install NAME-EPOCH:VERSION-RELEASE[.ARCH] ...
    check         dnf <root options> --setopt=exit_on_lock=True --assumeno install ...
    install_files dnf <root options> --setopt=exit_on_lock=True -y install /abs/FILE.rpm ...
    remove        dnf <root options> --setopt=exit_on_lock=True -y --noautoremove remove NAME ...
    refresh       dnf <root options> --setopt=exit_on_lock=True --refresh
                      --setopt=skip_if_unavailable=False makecache
    installed     rpm --root ROOT --dbpath DB -q --qf ... NAME ...

    root options: --installroot ROOT [--releasever R] --setopt=reposdir=ROOT/etc/yum.repos.d

dnf 4 downgrades when asked to `install` an older exact NEVRA (or an older
local file), so one command serves both directions. The epoch is always
written (0 when there is none) so the spec cannot be read another way.
`keepcache` keeps each downloaded rpm in the cache (ROOT/var/cache/dnf),
which is what cached_package_file() later finds for a rollback.
`exit_on_lock` makes dnf fail at once (transient) instead of waiting for
another dnf. `--assumeno` resolves and prints the transaction, then aborts:
check mode can never install, whatever the dnf version.

The rpm database path comes from the root (/usr/lib/sysimage/rpm or
/var/lib/rpm, as the collector finds it); dnf and zypper use librpm's
%_dbpath, so on a host whose rpm defaults elsewhere (Debian's ~/.rpmdb) the
caller passes an env whose HOME has an .rpmmacros setting it.
"""

from __future__ import annotations

import glob
import os
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from patchwarden.agent.collectors import rpm as rpm_collector
from patchwarden.agent.host import LocalHost
from patchwarden.agent.pkgmgr.base import (
    COMMON_TRANSIENT,
    DEFAULT_TIMEOUT,
    RPM_VERSION_RE,
    Change,
    InvalidPackageSpec,
    PackageManager,
    PackageManagerError,
    Plan,
    Result,
    Target,
    pid_file_held,
    posix_lock_held,
    split_epoch,
    validate_arch,
    validate_files,
    validate_name,
    validate_names,
    validate_targets,
    validate_version,
)

DEFAULT_DB_PATH = "/var/lib/rpm"
REBOOT_FLAGS = ("/run/reboot-required", "/var/run/reboot-required", "/run/reboot-needed")
KERNEL_PACKAGES = ("kernel", "kernel-core", "kernel-default", "kernel-uek", "kernel-rt")
PID_LOCKS = ("/var/lib/dnf/rpmdb_lock.pid", "/var/run/yum.pid", "/run/yum.pid")
MODULE_DIRS = ("/lib/modules", "/usr/lib/modules")
NEVRA_FORMAT = "%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}"
HEADER_FORMAT = "%{NAME}\\t%{EPOCH}\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}\\n"

RPM_TRANSIENT = (
    *COMMON_TRANSIENT,
    "can't create transaction lock",
)

# dnf's transaction table: section heading -> action
DNF_SECTIONS = {
    "Installing": "install",
    "Installing dependencies": "install",
    "Installing weak dependencies": "install",
    "Upgrading": "upgrade",
    "Downgrading": "downgrade",
    "Reinstalling": "reinstall",
    "Removing": "remove",
    "Removing dependent packages": "remove",
    "Removing unused dependencies": "remove",
}


def validate_rpm_version(version: str) -> str:
    validate_version(version)
    if not RPM_VERSION_RE.fullmatch(version):
        raise InvalidPackageSpec(
            "refusing rpm version %r: an exact rpm version is [epoch:]version-release" % version
        )
    return version


def parse_transaction(text: str) -> List[Change]:
    """Changes from dnf's transaction table (printed before --assumeno aborts).

    Package rows are "name arch version repository size"; a name too long for
    its column is printed alone with the rest on the next line.
    """
    changes: List[Change] = []
    action: Optional[str] = None
    pending: Optional[str] = None
    for line in text.split("\n"):
        if not line.startswith(" "):
            heading = line.strip()
            action = DNF_SECTIONS.get(heading[:-1]) if heading.endswith(":") else None
            pending = None
            continue
        words = line.split()
        if action is None or not words or words[0] == "replacing":
            continue
        if pending is not None:
            words, pending = [pending, *words], None
        if len(words) == 1:
            pending = words[0]
            continue
        if len(words) < 4:
            continue
        name, arch, version = words[0], words[1], words[2]
        if action == "remove":
            changes.append(Change(action, name, None, version, arch))
        else:
            changes.append(Change(action, name, version, None, arch))
    return changes


def parse_kernel_installs(text: str) -> Optional[str]:
    """The most recently installed kernel's NEVRA from lines of
    "INSTALLTIME<TAB>NEVRA" (rpm prints other lines for absent names)."""
    newest: Optional[Tuple[int, str]] = None
    for line in text.split("\n"):
        when, sep, nevra = line.partition("\t")
        if sep and when.strip().isdigit() and nevra.strip():
            candidate = (int(when), nevra.strip())
            if newest is None or candidate[0] >= newest[0]:
                newest = candidate
    return newest[1] if newest else None


class RpmBackend(PackageManager):
    """What every rpm-based back-end shares: the database, its lock, cached
    package files, reboots. Subclasses add the front-end's commands."""

    file_suffix = ".rpm"
    cache_dirs: Tuple[str, ...] = ()
    reboot_commands: Tuple[Tuple[Tuple[str, ...], int, int], ...] = (
        # (argv, exit code meaning "reboot needed", exit code meaning "not needed")
        (("needs-restarting", "-r"), 1, 0),
    )

    def db_path(self) -> str:
        return rpm_collector.find_database(LocalHost(self.root)) or DEFAULT_DB_PATH

    def rpm(self) -> List[str]:
        # --dbpath is relative to --root; naming it keeps a foreign rpm build
        # looking at the root's database (as the collector does).
        return ["rpm", "--root", self.root, "--dbpath", self.db_path()]

    def nevra(self, target: Target) -> str:
        epoch, version_release = split_epoch(validate_rpm_version(target.version))
        spec = "%s-%s:%s" % (target.name, epoch, version_release)
        return spec if target.arch is None else "%s.%s" % (spec, target.arch)

    def installed(self, names: Optional[Iterable[str]] = None) -> Dict[str, str]:
        wanted = None if names is None else validate_names(names)
        if rpm_collector.find_database(LocalHost(self.root)) is None:
            return {}
        which = ["-qa"] if wanted is None else ["-q", *wanted]
        result = self.query(
            [*self.rpm(), *which, "--qf", rpm_collector.QUERY_FORMAT],
            # rpm -q exits with the number of names that are not installed.
            judge=lambda code, output: code == 0 or "is not installed" in output,
        )
        if not result.ok:
            raise PackageManagerError("rpm -q failed: %s" % result.stderr.strip())
        versions: Dict[str, str] = {}
        for package in rpm_collector.parse_query(result.stdout):
            versions[str(package["name"])] = str(package["version"])
        return versions

    def rpm_install_files(self, paths: Sequence[str]) -> Result:
        files = validate_files(paths, self.file_suffix)
        return self.run([*self.rpm(), "-U", "--oldpackage", "--replacepkgs", *files])

    def repack(self, name: str, dest_dir: str, arch: Optional[str] = None) -> Optional[str]:
        """Always None: rpm cannot rebuild an installed package (rpm's
        --repackage was dropped in rpm 4.6, and `rpm --root` never had an
        equivalent). An rpm rollback needs the old file from the download
        cache (cached_package_file, with keepcache) or kept beforehand."""
        validate_name(name)
        return None

    def cached_package_file(
        self, name: str, version: str, arch: Optional[str] = None
    ) -> Optional[str]:
        """NAME-VERSION-RELEASE.ARCH.rpm under the cache directories, checked
        against its header (the file name has no epoch)."""
        validate_name(name)
        epoch, version_release = split_epoch(validate_rpm_version(version))
        pattern = "%s-%s.%s.rpm" % (name, version_release, validate_arch(arch) if arch else "*")
        for directory in self.cache_dirs:
            base = glob.escape(self.path(directory))
            for candidate in sorted(glob.glob(os.path.join(base, "**", pattern), recursive=True)):
                if self._header_matches(candidate, name, epoch, version_release):
                    return candidate
        return None

    def _header_matches(self, path: str, name: str, epoch: str, version_release: str) -> bool:
        result = self.query(
            ["rpm", "-qp", "--nosignature", "--nodigest", "--qf", HEADER_FORMAT, path]
        )
        fields = result.stdout.strip().split("\t")
        if not result.ok or len(fields) != 5:
            return False
        header_name, header_epoch, header_version, header_release, _ = fields
        if header_epoch == rpm_collector.NONE:
            header_epoch = "0"
        header_vr = "%s-%s" % (header_version, header_release)
        return (header_name, header_epoch, header_vr) == (name, epoch, version_release)

    def lock_files(self) -> List[str]:
        """POSIX-locked files (rpm's transaction lock); subclasses add theirs."""
        return [self.path(os.path.join(self.db_path(), ".rpm.lock"))]

    def lock_held(self) -> bool:
        return any(posix_lock_held(path) for path in self.lock_files())

    def reboot_required(self) -> bool:
        """A reboot flag file under the root; on the live system also the
        distribution's tool (needs-restarting -r, zypper needs-rebooting) or,
        without one, whether the running kernel is the newest installed one.
        A sandbox root runs nothing, so only its flag files count."""
        if any(os.path.exists(self.path(flag)) for flag in REBOOT_FLAGS):
            return True
        if self.is_sandbox:
            return False
        for argv, needed, not_needed in self.reboot_commands:
            if self.which(argv[0]):
                result = self.query(argv, ok_codes=(needed, not_needed))
                if result.ok:
                    return result.exit_code == needed
        return self._kernel_outdated()

    def _kernel_outdated(self) -> bool:
        installs = self.query(
            [
                *self.rpm(),
                "-q",
                "--qf",
                "%{INSTALLTIME}\\t" + NEVRA_FORMAT + "\\n",
                *KERNEL_PACKAGES,
            ],
            ok_codes=range(256),
        )
        newest = parse_kernel_installs(installs.stdout)
        release = os.uname().release
        running: Optional[str] = None
        for directory in MODULE_DIRS:
            modules = os.path.join(directory, release)
            if os.path.isdir(modules):
                owner = self.query([*self.rpm(), "-qf", "--qf", NEVRA_FORMAT + "\\n", modules])
                if owner.ok and owner.stdout.strip():
                    running = owner.stdout.strip().split("\n")[0]
                    break
        return newest is not None and running is not None and newest != running


class DnfManager(RpmBackend):
    name = "dnf"
    cache_dirs = ("/var/cache/dnf", "/var/cache/yum")
    transient_messages = (
        *RPM_TRANSIENT,
        "Cannot download",
        "Failed to download",
        "Curl error",
        "All mirrors were tried",
        "Cannot find a valid baseurl",
        "Cannot retrieve repository metadata",
        "Librepo error",
        "Timeout was reached",
        "already locked by",
        "Waiting for process with pid",
    )

    def __init__(
        self,
        root: str = "/",
        *,
        env: Optional[Mapping[str, str]] = None,
        timeout: float = DEFAULT_TIMEOUT,
        releasever: Optional[str] = None,
    ) -> None:
        super().__init__(root, env=env, timeout=timeout)
        if releasever is not None:
            validate_version(releasever)
        self.releasever = releasever

    def dnf(self) -> List[str]:
        argv = ["dnf"]
        if self.is_sandbox:
            argv += ["--installroot", self.root]
            # Repositories of the root only, never the host's (dnf would
            # otherwise fall back to /etc/yum.repos.d of the host).
            argv.append("--setopt=reposdir=%s" % self.path("/etc/yum.repos.d"))
        if self.releasever is not None:
            argv += ["--releasever", self.releasever]
        return [*argv, "--setopt=exit_on_lock=True"]

    def refresh(self) -> Result:
        # Without skip_if_unavailable=False dnf skips a failing repository
        # and exits 0 (the default on some distributions).
        argv = [*self.dnf(), "--refresh", "--setopt=skip_if_unavailable=False", "makecache"]
        return self.run(argv)

    def install(self, targets: Sequence[Target]) -> Result:
        specs = [self.nevra(t) for t in validate_targets(targets)]
        return self.run([*self.dnf(), "-y", "--setopt=keepcache=True", "install", *specs])

    def check(self, targets: Sequence[Target]) -> Plan:
        checked = validate_targets(targets)
        specs = [self.nevra(t) for t in checked]

        def judge(code: Optional[int], output: str) -> bool:
            # --assumeno answers "no": exit 1 and "Operation aborted." is the
            # success path; "Nothing to do." exits 0.
            aborted = code == 1 and "Operation aborted" in output and "Error:" not in output
            return code == 0 or aborted

        result = self.run(
            [*self.dnf(), "--assumeno", "install", *specs],
            timeout=min(self.timeout, 600.0),
            judge=judge,
        )
        if not result.ok:
            return Plan((), result)
        changes = parse_transaction(result.stdout)
        # The table shows only the new versions; the old ones come from rpm.
        before = self.installed([c.name for c in changes]) if changes else {}
        completed = []
        for change in changes:
            if change.action in ("upgrade", "downgrade", "reinstall"):
                old = before.get(change.name)
                change = Change(change.action, change.name, change.version, old, change.arch)
            completed.append(change)
        return Plan(tuple(completed), result)

    def install_files(self, paths: Sequence[str]) -> Result:
        files = validate_files(paths, self.file_suffix)
        return self.run([*self.dnf(), "-y", "install", *files])

    def remove(self, names: Sequence[str]) -> Result:
        checked = validate_names(names)
        return self.run([*self.dnf(), "-y", "--noautoremove", "remove", *checked])

    def lock_held(self) -> bool:
        """rpm's transaction lock, or dnf's (and yum's) pid-file lock naming a
        live process."""
        return super().lock_held() or any(pid_file_held(self.path(p)) for p in PID_LOCKS)
