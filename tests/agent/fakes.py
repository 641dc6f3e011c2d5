"""Test doubles for the agent: a Host made of dicts, and sandbox roots on disk."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from patchwarden.agent.host import CommandNotFound, CommandResult


class FakeHost:
    """A Host whose files and command outputs are given up front.

    Commands are matched on their exact argv; a program is "installed" when
    it appears in `programs` or as the first word of a scripted command.
    Every run is recorded in `calls`.
    """

    def __init__(
        self,
        files: Mapping[str, str] | None = None,
        commands: Mapping[tuple[str, ...], CommandResult] | None = None,
        programs: Iterable[str] = (),
        live: bool = True,
        root: str = "/",
        dirs: Iterable[str] = (),
    ) -> None:
        self.files = dict(files or {})
        self.commands = dict(commands or {})
        self.programs = set(programs) | {argv[0] for argv in self.commands}
        self.dirs = set(dirs)
        self._live = live
        self._root = root
        self.calls: list[tuple[str, ...]] = []

    @property
    def root(self) -> str:
        return self._root

    @property
    def is_live(self) -> bool:
        return self._live

    def read_text(self, path: str) -> str | None:
        return self.files.get(path)

    def list_dir(self, path: str) -> Sequence[str] | None:
        prefix = path.rstrip("/") + "/"
        names = {
            p[len(prefix) :].split("/")[0]
            for p in [*self.files, *self.dirs]
            if p.startswith(prefix)
        }
        if not names and path not in self.dirs:
            return None
        return sorted(names)

    def which(self, program: str) -> str | None:
        return "/usr/bin/" + program if program in self.programs else None

    def run(self, argv: Sequence[str], timeout: float = 120.0) -> CommandResult:
        self.calls.append(tuple(argv))
        if argv[0] not in self.programs:
            raise CommandNotFound(argv[0])
        result = self.commands.get(tuple(argv))
        if result is None:
            return CommandResult(1, "", f"fake host: no scripted output for {argv!r}")
        return result


def result(stdout: str = "", returncode: int = 0, stderr: str = "") -> CommandResult:
    return CommandResult(returncode, stdout, stderr)


# A dpkg status database covering the cases the collector must get right.
DPKG_STATUS = """\
Package: libc6
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 12986
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u4
Depends: libgcc-s1
Description: GNU C Library: Shared libraries
 Contains the standard libraries that are used by nearly all programs on
 the system.
 .
 Version: 9.9 (a continuation line that only looks like a field)

Package: libc6
Status: install ok installed
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>
Architecture: i386
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u4
Description: GNU C Library: Shared libraries

Package: libsqlite3-0
Status: install ok installed
Maintainer: Laszlo Boszormenyi (GCS) <gcs@debian.org>
Architecture: amd64
Source: sqlite3 (3.40.1-2)
Version: 3.40.1-2+b1
Description: SQLite 3 shared library

Package: tzdata
Status: hold ok installed
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>
Architecture: all
Version: 2024a-0+deb12u1
Description: time zone and daylight-saving time data

Package: oldpkg
Status: deinstall ok config-files
Maintainer: Nobody <nobody@example.org>
Architecture: amd64
Version: 1.0-1
Conffiles:
 /etc/oldpkg.conf 0123456789abcdef0123456789abcdef
Description: removed, configuration kept

Package: brokenpkg
Status: install reinstreq half-installed
Maintainer: Nobody <nobody@example.org>
Architecture: amd64
Version: 1:2.0-3
Description: interrupted upgrade

Package: pendingpkg
Status: install ok triggers-pending
Maintainer: Nobody <nobody@example.org>
Architecture: amd64
Source: pending-src
Version: 0.5-1
Triggers-Pending: ldconfig
Description: waits for a trigger

Package: wantedpkg
Status: install ok not-installed
Architecture: amd64
"""

OS_RELEASE = """\
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
"""


def write_file(root: Path, path: str, text: str) -> Path:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return target


def make_sandbox_root(root: Path, dpkg_status: str = DPKG_STATUS) -> Path:
    """A Debian-like image root: os-release, hostname, machine id, kernels, dpkg."""
    write_file(root, "/etc/os-release", OS_RELEASE)
    write_file(root, "/etc/debian_version", "12.5\n")
    write_file(root, "/etc/hostname", "# set by the installer\nsandbox-host\n")
    write_file(root, "/etc/machine-id", "0123456789abcdef0123456789abcdef\n")
    for release in ("6.1.0-9-amd64", "6.1.0-18-amd64", "5.10.0-28-amd64"):
        os.makedirs(root / "lib" / "modules" / release, exist_ok=True)
    write_file(root, "/var/lib/dpkg/status", dpkg_status)
    return root
