"""Debian family: apt-get for repository versions, dpkg for package files,
dpkg-query and dpkg-deb to rebuild an installed package.

Commands (ROOT options only for a sandbox root, see below):

    install      apt-get -q -y <dpkg options> --allow-downgrades --no-remove
                     install NAME[:ARCH]=VERSION ...
    check        apt-get -q -s <same> install ...      (simulation: no lock, no change)
    install_files dpkg <root options> --force-confdef --force-confold --install FILE.deb ...
    remove       apt-get -q -y <dpkg options> remove NAME ...
    refresh      apt-get -q -y <dpkg options> update
    repack       dpkg-query -s / -L / --control-path NAME, then dpkg-deb --build

`--no-remove` makes apt abort rather than remove a package to satisfy the
requested versions; `--force-confdef --force-confold` keep locally changed
configuration files without asking.

A sandbox root gets an APT_CONFIG file (written for the one command, then
deleted) that points every apt directory at the root before apt reads any
other configuration:

    Dir "ROOT/"; Dir::State::status "ROOT/var/lib/dpkg/status";
    APT::Sandbox::User "root";   (when running as root: no _apt user for downloads)

and dpkg runs with `--root=ROOT --log=ROOT/var/log/dpkg.log --force-not-root
--force-script-chrootless` (through `-o DPkg::Options::=...` under apt).
Chrootless means maintainer scripts run on the host with DPKG_ROOT set:
right for sandbox and image roots built for it, not for arbitrary images.
apt's own locks (ROOT/var/lib/dpkg/lock-frontend ...) stay in force.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import stat
import tempfile
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple

from patchwarden.agent.collectors import dpkg as dpkg_collector
from patchwarden.agent.host import LocalHost
from patchwarden.agent.pkgmgr.base import (
    COMMON_TRANSIENT,
    Change,
    PackageManager,
    PackageManagerError,
    Plan,
    Result,
    Target,
    posix_lock_held,
    validate_arch,
    validate_files,
    validate_name,
    validate_names,
    validate_targets,
    validate_version,
)

STATUS_PATH = "/var/lib/dpkg/status"
ARCHIVES_DIR = "/var/cache/apt/archives"
LOCKS = (
    "/var/lib/dpkg/lock-frontend",
    "/var/lib/dpkg/lock",
    "/var/lib/apt/lists/lock",
    "/var/cache/apt/archives/lock",
)
REBOOT_FLAGS = ("/run/reboot-required", "/var/run/reboot-required")
# Directories apt and dpkg expect; made in a sandbox root when missing.
SANDBOX_DIRS = (
    "var/lib/dpkg/info",
    "var/lib/dpkg/updates",
    "var/lib/apt/lists/partial",
    "var/cache/apt/archives/partial",
    "var/log/apt",
    "etc/apt/apt.conf.d",
    "etc/apt/preferences.d",
    "etc/apt/sources.list.d",
)
CONFFILE_OPTIONS = ("--force-confdef", "--force-confold")
SCRIPTS = ("preinst", "postinst", "prerm", "postrm", "config")
# Status-database fields that are not part of a package's control file.
STATUS_ONLY_FIELDS = {
    "status",
    "config-version",
    "conffiles",
    "triggers-pending",
    "triggers-awaited",
}

# "Inst name[:arch] [old] (new Origin:suite [arch])", "Remv name[:arch] [old]"
INST_RE = re.compile(
    r"^Inst (?P<name>[^\s:]+)(?::\S+)? (?:\[(?P<old>[^\]]+)\] )?"
    r"\((?P<new>\S+)[^\[]*\[(?P<arch>[^\]]+)\]\)",
    re.MULTILINE,
)
REMV_RE = re.compile(r"^Remv (?P<name>[^\s:]+)(?::(?P<arch>\S+))?(?: \[(?P<old>[^\]]+)\])?", re.M)


def apt_quote(text: str) -> str:
    """apt's QuoteString(text, "_:"), used for the names of cached .deb files."""
    quoted = []
    for char in text:
        code = ord(char)
        if char in "_:%" or code <= 0x20 or code >= 0x7F:
            quoted.append("%%%02x" % code)
        else:
            quoted.append(char)
    return "".join(quoted)


def parse_simulation(text: str) -> List[Change]:
    """Changes from `apt-get -s` output: its Inst/Remv lines, with the
    "will be DOWNGRADED" list telling downgrades from upgrades."""
    downgraded: Set[str] = set()
    section = ""
    for line in text.split("\n"):
        if line.startswith("The following"):
            section = line
        elif line.startswith(" ") and "DOWNGRADED" in section:
            downgraded.update(word.split(":")[0] for word in line.split() if word[:1].isalnum())
        else:
            section = ""
    changes: List[Change] = []
    for match in INST_RE.finditer(text):
        name, old, new = match.group("name"), match.group("old"), match.group("new")
        if old is None:
            action = "install"
        elif old == new:
            action = "reinstall"
        elif name in downgraded:
            action = "downgrade"
        else:
            action = "upgrade"
        changes.append(Change(action, name, new, old, match.group("arch")))
    for match in REMV_RE.finditer(text):
        changes.append(
            Change("remove", match.group("name"), None, match.group("old"), match.group("arch"))
        )
    return changes


def parse_control(text: str) -> List[Tuple[str, str]]:
    """(field, value) pairs of one deb822 stanza, continuation lines kept
    (value is everything after "Field:", newlines included)."""
    fields: List[Tuple[str, str]] = []
    for line in text.rstrip("\n").split("\n"):
        if line[:1] in (" ", "\t") and fields:
            name, value = fields[-1]
            fields[-1] = (name, value + "\n" + line)
        elif ":" in line:
            name, _, value = line.partition(":")
            fields.append((name.strip(), value.strip()))
    return fields


def parse_file_list(text: str) -> List[Tuple[str, str]]:
    """(path in the package, path where its content is) from `dpkg-query -L`.

    A file another package diverted away is at the "diverted by ... to:" path;
    "package diverts others to:" concerns other packages' copies.
    """
    entries: List[Tuple[str, str]] = []
    for line in text.split("\n"):
        if not line.strip() or line == "/.":
            continue
        if line.startswith("/"):
            entries.append((line, line))
            continue
        head, sep, target = line.partition(" to: ")
        if sep and entries and (head.startswith("diverted by ") or head == "locally diverted"):
            entries[-1] = (entries[-1][0], target.strip())
    return entries


class AptManager(PackageManager):
    name = "apt"
    file_suffix = ".deb"
    transient_messages = (
        *COMMON_TRANSIENT,
        "Could not get lock",
        "Unable to acquire the dpkg frontend lock",
        "Unable to lock directory",
        "is another process using it",
        "dpkg frontend lock was locked by another process",
        "dpkg status database is locked by another process",
        "Could not connect to",
        "Failed to fetch",
        "Unable to fetch some archives",
        "Some index files failed to download",
        "Hash Sum mismatch",
    )

    # -- command building ---------------------------------------------------------------

    def dpkg_root_options(self) -> List[str]:
        if not self.is_sandbox:
            return []
        return [
            "--root=%s" % self.root,
            "--log=%s" % self.path("/var/log/dpkg.log"),
            "--force-not-root",
            "--force-script-chrootless",
        ]

    def apt_options(self) -> List[str]:
        options: List[str] = []
        for option in (*self.dpkg_root_options(), *CONFFILE_OPTIONS):
            options += ["-o", "DPkg::Options::=%s" % option]
        return options

    def sandbox_config(self) -> str:
        if '"' in self.root or "\n" in self.root:
            raise PackageManagerError("cannot point apt at a root path with quotes or newlines")
        lines = [
            'Dir "%s/";' % self.root,
            'Dir::State::status "%s";' % self.path(STATUS_PATH),
        ]
        if os.geteuid() == 0:
            lines.append('APT::Sandbox::User "root";')
        return "\n".join(lines) + "\n"

    def _prepare_sandbox(self) -> None:
        if not os.path.exists(self.path(STATUS_PATH)):
            raise PackageManagerError("no dpkg database at %s" % self.path(STATUS_PATH))
        for directory in SANDBOX_DIRS:
            os.makedirs(self.path(directory), exist_ok=True)

    def apt_get(
        self, args: Sequence[str], *, simulate: bool = False, refresh: bool = False
    ) -> Result:
        argv = ["apt-get", "-q", "-s" if simulate else "-y", *self.apt_options(), *args]

        def judge(code: Optional[int], output: str) -> bool:
            # apt-get update exits 0 even when every index failed to download.
            failed = "Some index files failed to download" in output or "Err:" in output
            return code == 0 and not (refresh and failed)

        timeout = None if not simulate else min(self.timeout, 300.0)
        if not self.is_sandbox:
            return self.run(argv, timeout=timeout, judge=judge)
        self._prepare_sandbox()
        fd, config = tempfile.mkstemp(prefix="patchwarden-apt-", suffix=".conf")
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(self.sandbox_config())
            return self.run(argv, timeout=timeout, judge=judge, env={"APT_CONFIG": config})
        finally:
            os.unlink(config)

    @staticmethod
    def spec(target: Target) -> str:
        name = target.name if target.arch is None else "%s:%s" % (target.name, target.arch)
        return "%s=%s" % (name, target.version)

    def install_args(self, targets: Sequence[Target]) -> List[str]:
        return ["--allow-downgrades", "--no-remove", "install", *map(self.spec, targets)]

    # -- the interface ------------------------------------------------------------------

    def installed(self, names: Optional[Iterable[str]] = None) -> Dict[str, str]:
        wanted = None if names is None else set(validate_names(names))
        collected = dpkg_collector.collect(LocalHost(self.root))
        versions: Dict[str, str] = {}
        for package in collected.packages or ():
            name, version = str(package["name"]), str(package["version"])
            # Half-installed or unconfigured packages are not "installed" yet.
            if package.get("status") == "installed" and (wanted is None or name in wanted):
                versions[name] = version
        return versions

    def refresh(self) -> Result:
        return self.apt_get(["update"], refresh=True)

    def install(self, targets: Sequence[Target]) -> Result:
        return self.apt_get(self.install_args(validate_targets(targets)))

    def check(self, targets: Sequence[Target]) -> Plan:
        result = self.apt_get(self.install_args(validate_targets(targets)), simulate=True)
        changes = tuple(parse_simulation(result.stdout)) if result.ok else ()
        return Plan(changes, result)

    def install_files(self, paths: Sequence[str]) -> Result:
        files = validate_files(paths, self.file_suffix)
        if self.is_sandbox:
            self._prepare_sandbox()
        return self.run(["dpkg", *self.dpkg_root_options(), *CONFFILE_OPTIONS, "--install", *files])

    def remove(self, names: Sequence[str]) -> Result:
        return self.apt_get(["remove", *validate_names(names)])

    def cached_package_file(
        self, name: str, version: str, arch: Optional[str] = None
    ) -> Optional[str]:
        """ARCHIVES_DIR/NAME_VERSION_ARCH.deb, the epoch's colon written %3a as
        apt does. apt-get keeps what it downloads (the `apt` command does not,
        unless APT::Keep-Downloaded-Packages is true)."""
        validate_name(name)
        validate_version(version)
        stem = "%s_%s_" % (apt_quote(name), apt_quote(version))
        directory = self.path(ARCHIVES_DIR)
        if arch is not None:
            for candidate_arch in (validate_arch(arch), "all"):
                candidate = os.path.join(directory, stem + candidate_arch + ".deb")
                if os.path.isfile(candidate):
                    return candidate
            return None
        found = sorted(glob.glob(os.path.join(glob.escape(directory), glob.escape(stem) + "*.deb")))
        return found[0] if found else None

    def lock_held(self) -> bool:
        return any(posix_lock_held(self.path(lock)) for lock in LOCKS)

    def reboot_required(self) -> bool:
        return any(os.path.exists(self.path(flag)) for flag in REBOOT_FLAGS)

    # -- repack -------------------------------------------------------------------------

    def _dpkg_query(self, *args: str) -> Result:
        root = ["--root=%s" % self.root] if self.is_sandbox else []
        return self.query(["dpkg-query", *root, *args])

    def repack(self, name: str, dest_dir: str, arch: Optional[str] = None) -> Optional[str]:
        """Rebuild the installed version of `name` as a .deb in dest_dir, the
        way dpkg-repack does: control data from the dpkg database (status
        record, conffiles, maintainer scripts), the files as they are on disk
        now (so locally changed conffiles go in as changed), owners and modes
        kept when running as root. Deleted conffiles are left out (dpkg keeps
        such a deletion across upgrades too); any other missing file is an
        error, since the package could not be restored whole.
        """
        validate_name(name)
        spec = name if arch is None else "%s:%s" % (name, validate_arch(arch))
        shown = self._dpkg_query("-s", spec)
        if not shown.ok:
            raise PackageManagerError("cannot repack %s: %s" % (spec, shown.stderr.strip()))
        stanzas = [s for s in shown.stdout.split("\n\n") if s.strip()]
        if len(stanzas) != 1:
            raise PackageManagerError(
                "%s is installed for several architectures; name one to repack it" % name
            )
        fields = parse_control(stanzas[0])
        values = {key.lower(): value for key, value in fields}
        if values.get("status", "").split()[1:] != ["ok", "installed"]:
            raise PackageManagerError(
                "cannot repack %s: dpkg status is %r, not installed"
                % (spec, values.get("status", ""))
            )
        version, pkg_arch = values.get("version", ""), values.get("architecture", "")
        validate_version(version)
        validate_arch(pkg_arch)
        listed = self._dpkg_query("-L", spec)
        control_paths = self._dpkg_query("--control-path", spec)
        for result in (listed, control_paths):
            if not result.ok:
                raise PackageManagerError("cannot repack %s: %s" % (spec, result.stderr.strip()))
        conffiles = self._conffiles(values.get("conffiles", ""))
        os.makedirs(dest_dir, exist_ok=True)
        tree = tempfile.mkdtemp(prefix=".repack-", dir=dest_dir)
        try:
            missing_conffiles = self._copy_files(tree, parse_file_list(listed.stdout), conffiles)
            control_dir = os.path.join(tree, "DEBIAN")
            os.makedirs(control_dir)
            os.chmod(control_dir, 0o755)  # noqa: S103 - the mode dpkg-deb requires
            self._write_control(control_dir, fields, conffiles, missing_conffiles)
            self._copy_control_files(control_dir, control_paths.stdout, name, pkg_arch)
            output = os.path.join(
                os.path.abspath(dest_dir), "%s_%s_%s.deb" % (name, apt_quote(version), pkg_arch)
            )
            owners = [] if os.geteuid() == 0 else ["--root-owner-group"]
            built = self.run(["dpkg-deb", *owners, "--build", tree, output])
            if not built.ok:
                raise PackageManagerError("dpkg-deb --build failed: %s" % built.stderr.strip())
            return output
        finally:
            shutil.rmtree(tree, ignore_errors=True)

    @staticmethod
    def _conffiles(text: str) -> Dict[str, str]:
        """{path: line for DEBIAN/conffiles} from a Conffiles field: obsolete
        ones (no longer shipped) dropped, remove-on-upgrade ones flagged."""
        entries: Dict[str, str] = {}
        for line in text.split("\n"):
            words = line.split()
            if not words or not words[0].startswith("/") or "obsolete" in words[2:]:
                continue
            flag = "remove-on-upgrade " if "remove-on-upgrade" in words[2:] else ""
            entries[words[0]] = flag + words[0]
        return entries

    def _copy_files(
        self, tree: str, entries: List[Tuple[str, str]], conffiles: Dict[str, str]
    ) -> Set[str]:
        as_root = os.geteuid() == 0
        missing: List[str] = []
        missing_conffiles: Set[str] = set()
        directories: List[Tuple[str, os.stat_result]] = []
        for path, actual in entries:
            source = self.path(actual)
            target = os.path.join(tree, path.lstrip("/"))
            try:
                info = os.lstat(source)
            except FileNotFoundError:
                if path in conffiles:
                    missing_conffiles.add(path)
                else:
                    missing.append(path)
                continue
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if stat.S_ISDIR(info.st_mode):
                os.makedirs(target, exist_ok=True)
                directories.append((target, info))
                continue
            if stat.S_ISLNK(info.st_mode):
                os.symlink(os.readlink(source), target)
            elif stat.S_ISREG(info.st_mode):
                shutil.copyfile(source, target)
            else:
                raise PackageManagerError("cannot repack %s: not a file or directory" % path)
            if as_root:
                os.lchown(target, info.st_uid, info.st_gid)  # before chmod: chown clears setuid
            if not stat.S_ISLNK(info.st_mode):
                os.chmod(target, stat.S_IMODE(info.st_mode))
        if missing:
            raise PackageManagerError(
                "cannot repack: %d packaged files are missing (%s)"
                % (len(missing), ", ".join(missing[:5]))
            )
        for target, info in reversed(directories):  # modes last: 0555 dirs block writes
            if as_root:
                os.lchown(target, info.st_uid, info.st_gid)
            os.chmod(target, stat.S_IMODE(info.st_mode))
        return missing_conffiles

    @staticmethod
    def _write_control(
        control_dir: str,
        fields: List[Tuple[str, str]],
        conffiles: Dict[str, str],
        missing_conffiles: Set[str],
    ) -> None:
        lines = [
            "%s: %s" % (key, value)
            for key, value in fields
            if key.lower() not in STATUS_ONLY_FIELDS
        ]
        with open(os.path.join(control_dir, "control"), "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
        kept = [line for path, line in conffiles.items() if path not in missing_conffiles]
        if kept:
            with open(os.path.join(control_dir, "conffiles"), "w", encoding="utf-8") as handle:
                handle.write("\n".join(kept) + "\n")

    @staticmethod
    def _copy_control_files(control_dir: str, listing: str, name: str, arch: str) -> None:
        prefixes = ("%s:%s." % (name, arch), "%s." % name)
        for path in listing.split("\n"):
            path = path.strip()
            if not path:
                continue
            base = os.path.basename(path)
            kind = next((base[len(p) :] for p in prefixes if base.startswith(p)), "")
            if not kind or kind in ("list", "conffiles") or "/" in kind:
                continue
            target = os.path.join(control_dir, kind)
            shutil.copyfile(path, target)
            os.chmod(target, 0o755 if kind in SCRIPTS else 0o644)
