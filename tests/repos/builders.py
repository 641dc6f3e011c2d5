"""Repositories for the tests: written by hand (fast, no tools) for the
parser and fetch tests, and built with the real tools (dpkg-deb,
apt-ftparchive, rpmbuild, createrepo_c, modifyrepo_c) for the comparisons
with apt, dnf and zypper."""

from __future__ import annotations

import gzip
import hashlib
import io
import lzma
import shutil
import subprocess
import tarfile
import time
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path

import pytest

ENV = {"LC_ALL": "C", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}


def run(argv: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    completed = subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, env=env or ENV, timeout=300
    )
    assert completed.returncode == 0, (
        f"{' '.join(argv)} failed ({completed.returncode}):\n{completed.stdout}\n{completed.stderr}"
    )
    return completed.stdout


def require(*tools: str) -> None:
    for tool in tools:
        if shutil.which(tool, path=ENV["PATH"]) is None:
            pytest.skip(f"{tool} is not installed (scripts/install-test-deps installs it)")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- hand-written metadata -------------------------------------------------------------


def stanza(name: str, version: str, arch: str = "amd64", **extra: str) -> str:
    lines = [f"Package: {name}", f"Version: {version}", f"Architecture: {arch}"]
    lines += [f"{key.replace('_', '-')}: {value}" for key, value in extra.items()]
    lines.append(f"Filename: pool/main/{name[0]}/{name}/{name}_{version}_{arch}.deb")
    lines.append("Size: 1234")
    lines.append("SHA256: " + sha256(f"{name} {version} {arch}".encode()))
    lines.append(f"Description: {name}\n a test package\n .\n Version: not a field")
    return "\n".join(lines) + "\n"


def release_text(
    files: dict[str, bytes],
    *,
    suite: str = "bookworm",
    label: str = "Debian",
    date: str = "Sat, 10 May 2025 09:03:18 UTC",
    extra: str = "",
) -> str:
    lines = [
        "Origin: Debian",
        f"Label: {label}",
        f"Suite: {suite}",
        f"Codename: {suite}",
        f"Date: {date}",
        "Architectures: amd64",
        "Components: main",
    ]
    if extra:
        lines.append(extra)
    lines.append("MD5Sum:")
    lines += [
        f" {hashlib.md5(data).hexdigest()} {len(data):8d} {path}" for path, data in files.items()
    ]
    lines.append("SHA256:")
    lines += [f" {sha256(data)} {len(data):8d} {path}" for path, data in files.items()]
    return "\n".join(lines) + "\n"


FAKE_SIGNATURE = (
    "-----BEGIN PGP SIGNATURE-----\n\niQEzBAEBCAAdFiEE\n=abcd\n-----END PGP SIGNATURE-----\n"
)


def clearsign(text: str) -> str:
    """Clear-signed armour around ``text`` (the signature is not a real one)."""
    escaped = "".join(
        "- " + line if line.startswith("-") else line for line in text.splitlines(True)
    )
    return f"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n{escaped}{FAKE_SIGNATURE}"


def write_apt_suite(
    root: Path,
    suite: str,
    packages: str,
    *,
    label: str = "Debian",
    suffixes: tuple[str, ...] = ("", ".gz", ".xz"),
    inrelease: bool = True,
    by_hash: bool = False,
) -> dict[str, bytes]:
    """dists/<suite>/ with main/binary-amd64/Packages{suffixes} and a Release
    (and an InRelease); returns the index files by path."""
    directory = root / "dists" / suite
    plain = packages.encode()
    compress = {"": lambda d: d, ".gz": gzip.compress, ".xz": lzma.compress}
    files = {f"main/binary-amd64/Packages{suffix}": compress[suffix](plain) for suffix in suffixes}
    for path, data in files.items():
        target = directory / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        if by_hash:
            hashed = target.parent / "by-hash" / "SHA256" / sha256(data)
            hashed.parent.mkdir(parents=True, exist_ok=True)
            hashed.write_bytes(data)
    text = release_text(
        files, suite=suite, label=label, extra="Acquire-By-Hash: yes" if by_hash else ""
    )
    (directory / "Release").write_text(text)
    if inrelease:
        (directory / "InRelease").write_text(clearsign(text))
    return files


PRIMARY_NS = (
    'xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm"'
)


def primary_package(
    name: str, epoch: str, ver: str, rel: str, arch: str, build: int = 1700000000
) -> str:
    return f"""<package type="rpm">
  <name>{name}</name>
  <arch>{arch}</arch>
  <version epoch="{epoch}" ver="{ver}" rel="{rel}"/>
  <checksum type="sha256" pkgid="YES">{sha256(f"{name}-{ver}-{rel}".encode())}</checksum>
  <summary>test</summary>
  <time file="{build}" build="{build}"/>
  <size package="5525" installed="0" archive="124"/>
  <location href="Packages/{name}-{ver}-{rel}.{arch}.rpm"/>
  <format>
    <rpm:license>MIT</rpm:license>
    <rpm:sourcerpm>{name}-{ver}-{rel}.src.rpm</rpm:sourcerpm>
    <rpm:provides><rpm:entry name="{name}" flags="EQ" epoch="{epoch}" ver="{ver}" rel="{rel}"/></rpm:provides>
  </format>
</package>
"""


def primary_xml(*packages: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<metadata {PRIMARY_NS} packages="{len(packages)}">\n'
        + "".join(packages)
        + "</metadata>\n"
    ).encode()


UPDATEINFO = b"""<?xml version="1.0" encoding="UTF-8"?>
<updates>
  <update from="security@example.com" status="stable" type="security" version="2.0">
    <id>PWSA-2024:0001</id>
    <title>Important: pwt-sec security update</title>
    <issued date="2024-01-02 03:04:05"/>
    <updated date="2024-01-03 00:00:00"/>
    <severity>Important</severity>
    <references>
      <reference href="https://access.example.com/CVE-2024-0001" id="CVE-2024-0001" type="cve" title="CVE-2024-0001"/>
      <reference href="https://example.com/errata/PWSA-2024:0001" id="PWSA-2024:0001" type="self" title=""/>
      <reference href="https://bugzilla.example.com/1" id="1" type="bugzilla" title="CVE-2024-9999 bug"/>
      <reference href="https://example.com/CVE-2024-0002" type="cve"/>
    </references>
    <pkglist>
      <collection short="pw">
        <name>pw</name>
        <package name="pwt-sec" version="1.0" release="2" epoch="2" arch="x86_64" src="pwt-sec-1.0-2.src.rpm">
          <filename>pwt-sec-1.0-2.x86_64.rpm</filename>
          <reboot_suggested>True</reboot_suggested>
        </package>
        <package name="pwt-sec" version="1.0" release="2" epoch="2" arch="src">
          <filename>pwt-sec-1.0-2.src.rpm</filename>
        </package>
      </collection>
    </pkglist>
  </update>
  <update from="bugs@example.com" status="stable" type="bugfix" version="2.0">
    <id>PWBA-2024:0002</id>
    <title>pwt-data bug fix</title>
    <issued date="2024-02-03"/>
    <pkglist><collection short="pw">
      <package name="pwt-data" version="1.0" release="2" epoch="0" arch="noarch"/>
    </collection></pkglist>
  </update>
  <update from="suse" status="stable" type="recommended" version="1">
    <id>SUSE-2024-3</id>
    <title>recommended update</title>
    <issued date="1704164645"/>
    <severity>moderate</severity>
    <pkglist><collection><package name="pwt-tool" version="1.1" release="1" arch="x86_64"/></collection></pkglist>
  </update>
  <update type="newpackage"><id>NEW-1</id><issued date="not a date"/><severity>None</severity></update>
</updates>
"""


def write_rpm_repo(root: Path, files: dict[str, bytes], *, sizes: bool = True) -> bytes:
    """repodata/ with the given metadata files ({type: content}) and a
    repomd.xml listing them; returns repomd.xml."""
    repodata = root / "repodata"
    repodata.mkdir(parents=True, exist_ok=True)
    entries = []
    for kind, content in files.items():
        suffix = ".gz" if content.startswith(b"\x1f\x8b") else ""
        name = f"{sha256(content)}-{kind}.xml{suffix}"
        (repodata / name).write_bytes(content)
        size = f"<size>{len(content)}</size>" if sizes else ""
        entries.append(
            f"""  <data type="{kind}">
    <checksum type="sha256">{sha256(content)}</checksum>
    <location href="repodata/{name}"/>
    <timestamp>1700000100</timestamp>
    {size}
  </data>"""
        )
    repomd = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<repomd xmlns="http://linux.duke.edu/metadata/repo" '
        'xmlns:rpm="http://linux.duke.edu/metadata/rpm">\n'
        "  <revision>1700000100</revision>\n" + "\n".join(entries) + "\n</repomd>\n"
    ).encode()
    (repodata / "repomd.xml").write_bytes(repomd)
    return repomd


APKINDEX = """C:Q1a4MlOtVWH0cVgXyvLVwNmBn4ZyE=
P:busybox
V:1.36.1-r15
A:x86_64
S:512345
I:950272
T:Size optimized toolbox of many common UNIX utilities
U:https://busybox.net/
L:GPL-2.0-only
o:busybox
m:Sören Tempel <soeren+alpine@soeren-tempel.net>
t:1700000000
c:abcdef0123456789
D:so:libc.musl-x86_64.so.1
p:cmd:busybox=1.36.1-r15

C:Q1b4MlOtVWH0cVgXyvLVwNmBn4ZyE=
P:ssl_client
V:1.36.1-r15
A:x86_64
S:4806
I:14336
T:EXternal ssl_client for busybox wget
o:busybox
t:1700000001

C:Q1c4MlOtVWH0cVgXyvLVwNmBn4ZyE=
P:alpine-baselayout-data
V:3.4.3-r2
A:noarch
S:11000
o:alpine-baselayout
t:1700000002
"""


def tar_bytes(members: dict[str, bytes], *, end: bool = True) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1700000000
            archive.addfile(info, io.BytesIO(data))
    raw = buffer.getvalue()
    if not end:
        # abuild strips the end-of-archive blocks from the signature part.
        raw = raw[: 512 + ((len(members[next(iter(members))]) + 511) // 512) * 512]
    return raw


def apkindex_tar_gz(index: str = APKINDEX, *, signed: bool = True) -> bytes:
    """APKINDEX.tar.gz laid out as abuild-sign leaves it: a gzip member with
    the signature entry, then one with DESCRIPTION and APKINDEX."""
    body = gzip.compress(
        tar_bytes({"DESCRIPTION": b"v3.19.1-100-gdeadbeef\n", "APKINDEX": index.encode()})
    )
    if not signed:
        return body
    signature = gzip.compress(
        tar_bytes({".SIGN.RSA.alpine-devel@example.org.rsa.pub": b"\x01" * 256}, end=False)
    )
    return signature + body


# -- real packages and repositories -----------------------------------------------------


@dataclass(frozen=True)
class Deb:
    name: str
    version: str
    arch: str


def build_deb(work: Path, deb: Deb) -> Path:
    """A tiny real .deb (no files, no scripts) built with dpkg-deb."""
    tree = work / "tree" / f"{deb.name}_{deb.version}_{deb.arch}".replace(":", "%3a")
    (tree / "DEBIAN").mkdir(parents=True, exist_ok=True)
    (tree / "DEBIAN" / "control").write_text(
        f"Package: {deb.name}\nVersion: {deb.version}\nArchitecture: {deb.arch}\n"
        "Maintainer: Patchwarden Tests <tests@example.com>\n"
        f"Description: Patchwarden test package {deb.name}\n"
    )
    out = work / "debs"
    out.mkdir(parents=True, exist_ok=True)
    reproducible = {**ENV, "SOURCE_DATE_EPOCH": "1700000000"}  # same input, same bytes
    run(
        ["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(tree), str(out)],
        env=reproducible,
    )
    upstream = deb.version.partition(":")[2] or deb.version
    return out / f"{deb.name}_{upstream}_{deb.arch}.deb"


def apt_ftparchive_suite(
    root: Path, suite: str, debs: list[Path], *, label: str = "Debian", codename: str = ""
) -> None:
    """pool/<suite>/ holding ``debs`` and dists/<suite>/ indexed by apt-ftparchive."""
    pool = root / "pool" / suite
    pool.mkdir(parents=True, exist_ok=True)
    for deb in debs:
        shutil.copy(deb, pool / deb.name)
    binary = root / "dists" / suite / "main" / "binary-amd64"
    binary.mkdir(parents=True, exist_ok=True)
    packages = run(["apt-ftparchive", "packages", f"pool/{suite}"], cwd=root).encode()
    (binary / "Packages").write_bytes(packages)
    (binary / "Packages.gz").write_bytes(gzip.compress(packages))
    (binary / "Packages.xz").write_bytes(lzma.compress(packages))
    options = {
        "Origin": "Debian",
        "Label": label,
        "Suite": suite,
        "Codename": codename or suite,
        "Architectures": "amd64",
        "Components": "main",
        "Date": formatdate(time.time(), usegmt=True),
    }
    argv = ["apt-ftparchive"]
    for key, value in options.items():
        argv += ["-o", f"APT::FTPArchive::Release::{key}={value}"]
    release = run([*argv, "release", f"dists/{suite}"], cwd=root)
    (root / "dists" / suite / "Release").write_text(release)


RPM_SPEC = """\
Name: {name}
Version: {version}
Release: {release}
{epoch}Summary: Patchwarden test package {name}
License: MIT
BuildArch: {arch}

%description
Test package.

%files
"""


@dataclass(frozen=True)
class Rpm:
    name: str
    version: str
    release: str
    arch: str
    epoch: str = ""


def build_rpms(work: Path, rpms: list[Rpm]) -> dict[Rpm, Path]:
    """Tiny real rpms built with rpmbuild (``--target`` for the arch)."""
    top = work / "rpmbuild"
    built: dict[Rpm, Path] = {}
    for rpm in dict.fromkeys(rpms):
        spec = work / f"{rpm.name}-{rpm.version}-{rpm.release}.{rpm.arch}.spec"
        spec.write_text(
            RPM_SPEC.format(
                name=rpm.name,
                version=rpm.version,
                release=rpm.release,
                arch=rpm.arch,
                epoch=f"Epoch: {rpm.epoch}\n" if rpm.epoch else "",
            )
        )
        run(
            [
                "rpmbuild",
                "--define", f"_topdir {top}",
                "--define", "_build_id_links none",
                "--target", rpm.arch,
                "-bb", str(spec),
            ]
        )  # fmt: skip
        built[rpm] = (
            top / "RPMS" / rpm.arch / f"{rpm.name}-{rpm.version}-{rpm.release}.{rpm.arch}.rpm"
        )
        assert built[rpm].is_file(), built[rpm]
    return built


def rpm_env(home: Path) -> dict[str, str]:
    """An environment whose rpm database path is /var/lib/rpm (Debian's rpm
    defaults to ~/.rpmdb), so rpm, dnf, zypper and the collector agree."""
    home.mkdir(parents=True, exist_ok=True)
    (home / ".rpmmacros").write_text("%_dbpath /var/lib/rpm\n")
    return {**ENV, "HOME": str(home)}
