"""RPM packages, queried with the rpm binary against the root's database."""

from __future__ import annotations

from typing import List, Optional, Tuple

from patchwarden.agent.collectors.base import (
    CollectorOutput,
    failed,
    ok,
    package,
    skipped,
    try_run,
)
from patchwarden.agent.host import Host
from patchwarden.protocol.v1 import PackageDict

# Newer distributions keep the database under /usr (with /var/lib/rpm a link).
DB_PATHS = ("/usr/lib/sysimage/rpm", "/var/lib/rpm")
QUERY_FORMAT = "%{NAME}\\t%{EPOCH}\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}\\t%{SOURCERPM}\\n"
NONE = "(none)"  # how rpm prints an absent tag


def parse_source_rpm(source_rpm: str) -> Tuple[Optional[str], Optional[str]]:
    """("name", "version-release") from "name-version-release.src.rpm"."""
    if source_rpm == NONE or not source_rpm:
        return None, None
    stem = source_rpm
    for suffix in (".src.rpm", ".nosrc.rpm"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    parts = stem.rsplit("-", 2)
    if len(parts) != 3 or not all(parts):
        return None, None
    return parts[0], parts[1] + "-" + parts[2]


def parse_query(output: str) -> List[PackageDict]:
    packages: List[PackageDict] = []
    for line in output.split("\n"):
        fields = line.split("\t")
        if len(fields) != 6:
            continue
        name, epoch, version, release, arch, source_rpm = fields
        if name == "gpg-pubkey":  # imported signing keys, not software
            continue
        # rpm's own EVR form: the epoch is shown only when the header has one.
        evr = "%s-%s" % (version, release)
        if epoch != NONE:
            evr = "%s:%s" % (epoch, evr)
        source_name, source_vr = parse_source_rpm(source_rpm)
        # All sub-packages of one spec share its epoch, so the source has it too.
        source_version = source_vr
        if source_vr is not None and epoch != NONE:
            source_version = "%s:%s" % (epoch, source_vr)
        arch_or_none = arch if arch != NONE else None
        packages.append(package("rpm", name, evr, arch_or_none, source_name, source_version))
    return packages


def find_database(host: Host) -> Optional[str]:
    """The rpm database directory under the host's root, or None."""
    for path in DB_PATHS:
        if host.list_dir(path):  # absent and empty both mean "no database here"
            return path
    return None


def collect(host: Host) -> CollectorOutput:
    if not host.which("rpm"):
        return skipped("`rpm` is not installed")
    db_path = find_database(host)
    if db_path is None:
        return skipped("no rpm database under %s (looked in %s)" % (host.root, ", ".join(DB_PATHS)))
    # --dbpath is relative to --root; naming it explicitly keeps a foreign rpm
    # build (Debian's rpm defaults to ~/.rpmdb) looking at the right database.
    argv = ["rpm", "--root", host.root, "--dbpath", db_path, "-qa", "--qf", QUERY_FORMAT]
    result = try_run(host, argv, timeout=300.0)
    if result is None:
        return failed("rpm -qa did not run to completion")
    if result.returncode != 0:
        return failed("rpm -qa failed (exit %d): %s" % (result.returncode, result.stderr.strip()))
    return ok(packages=parse_query(result.stdout))
