"""Scan inputs: dpkg status, rpm -qa and pip requirements, each against its real tool where
the machine has one, and against hand-written edge cases."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from patchwarden.domain.inventory import InstalledPackage
from patchwarden.errors import InvalidInput
from patchwarden.scan import (
    RPM_QUERY_FORMAT,
    SkippedLine,
    parse_dpkg_status,
    parse_requirements,
    parse_rpm_qa,
)

DPKG_STATUS = Path("/var/lib/dpkg/status")
TOOL_ENV = {"LC_ALL": "C", "PATH": "/usr/bin:/bin"}

# -- dpkg -------------------------------------------------------------------------------


@pytest.mark.skipif(
    shutil.which("dpkg-query") is None or not DPKG_STATUS.is_file(),
    reason="needs dpkg-query and /var/lib/dpkg/status (Debian/Ubuntu)",
)
def test_this_machines_dpkg_status_equals_dpkg_query() -> None:
    fmt = "${db:Status-Abbrev}\t${Package}\t${Version}\t${Architecture}\t${source:Package}\t${source:Version}\n"
    output = subprocess.run(
        ["dpkg-query", "-W", "-f", fmt], capture_output=True, text=True, env=TOOL_ENV, check=True
    ).stdout
    expected = {
        tuple(line.split("\t")[1:])
        for line in output.splitlines()
        if line.startswith("ii")  # "ii ": wanted install, installed, no error
    }
    packages, skipped = parse_dpkg_status(DPKG_STATUS.read_text(encoding="utf-8"))
    installed = [p for p in packages if p.status == "installed"]
    assert {
        (p.name, p.version, p.arch, p.source_name, p.source_version) for p in installed
    } == expected
    assert len(installed) == len(expected) > 0
    assert skipped == []


STATUS = """\
Package: libssl1.1
Status: install ok installed
Priority: optional
Architecture: amd64
Multi-Arch: same
Source: openssl
Version: 1.1.1n-0+deb11u4
Description: Secure Sockets Layer toolkit - shared libraries
 This package is part of the OpenSSL project's implementation of the SSL and TLS
 .
 cryptographic protocols.

Package: bsdutils
Status: install ok installed
Architecture: amd64
Source: util-linux (2.36.1-8+deb11u1)
Version: 1:2.36.1-8+deb11u1

Package: libc6
Status: install ok installed
Architecture: i386
Source: glibc
Version: 2.31-13+deb11u5

Package: libc6
Status: install ok installed
Architecture: amd64
Source: glibc
Version: 2.31-13+deb11u5

Package: oldpkg
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0-1

Package: gone
Status: purge ok not-installed
Architecture: amd64

package: half
status: install reinstreq half-configured
architecture: all
version: 3.0-1
"""


def test_dpkg_stanzas() -> None:
    packages, skipped = parse_dpkg_status(STATUS)
    assert packages == [
        InstalledPackage(
            "deb", "libssl1.1", "1.1.1n-0+deb11u4", "amd64", "openssl", "1.1.1n-0+deb11u4"
        ),
        InstalledPackage(
            "deb", "bsdutils", "1:2.36.1-8+deb11u1", "amd64", "util-linux", "2.36.1-8+deb11u1"
        ),
        InstalledPackage("deb", "libc6", "2.31-13+deb11u5", "i386", "glibc", "2.31-13+deb11u5"),
        InstalledPackage("deb", "libc6", "2.31-13+deb11u5", "amd64", "glibc", "2.31-13+deb11u5"),
        # Files on disk though not configured: counted, with its state.
        InstalledPackage("deb", "half", "3.0-1", "all", "half", "3.0-1", "half-configured"),
    ]
    assert skipped == []  # config-files and not-installed are not packages, not errors


def test_dpkg_binnmu_source_version() -> None:
    text = "Package: bash\nStatus: install ok installed\nArchitecture: amd64\nSource: bash (5.2.15-2)\nVersion: 5.2.15-2+b8\n"
    [bash], _ = parse_dpkg_status(text)
    assert (bash.version, bash.source_name, bash.source_version) == (
        "5.2.15-2+b8",
        "bash",
        "5.2.15-2",
    )


def test_dpkg_bad_records_are_skipped_with_reasons() -> None:
    text = (
        " stray continuation\n"  # 1
        "Package: nover\n"  # 2
        "Status: install ok installed\n"
        "Architecture: amd64\n"
        "\n"
        "Package: weird\n"  # 6
        "Status: install ok confused\n"
        "Version: 1\n"
        "Architecture: amd64\n"
        "\n"
        "Package: badversion\n"  # 11
        "Status: install ok installed\n"
        "Architecture: amd64\n"
        "Version: 1.0 beta\n"
        "this line has no colon\n"  # 15
        "\n"
        "Package: dup\n"  # 17
        "Status: install ok installed\n"
        "Architecture: amd64\n"
        "Version: 1\n"
        "\n"
        "Package: dup\n"  # 22
        "Status: install ok installed\n"
        "Architecture: amd64\n"
        "Version: 2\n"
        "\n"
        "Package: badsource\n"  # 27
        "Status: install ok installed\n"
        "Architecture: amd64\n"
        "Source: a (b) (c)\n"
        "Version: 1\n"
        "\n"
        "Status: install ok installed\n"  # 33
        "Version: 1\n"
    )
    packages, skipped = parse_dpkg_status(text)
    assert [p.name for p in packages] == ["dup"]
    assert [line for line, _ in skipped] == [1, 15, 2, 6, 11, 22, 27, 33]
    reasons = dict(skipped)
    assert reasons[1] == "continuation line outside a field"
    assert reasons[2] == "nover: installed but no Version (truncated?)"
    assert reasons[6] == "weird: unknown Status 'install ok confused'"
    assert "whitespace" in reasons[11]
    assert reasons[22] == "dup:amd64 listed again (first on line 17)"
    assert reasons[27] == "badsource: cannot read Source 'a (b) (c)'"
    assert reasons[33] == "record without a Package field"


def test_dpkg_truncated_file() -> None:
    full = "Package: a\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0-1\n\n"
    cut = full + "Package: b\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.0-1"
    packages, skipped = parse_dpkg_status(cut)
    assert [p.name for p in packages] == ["a"]
    assert skipped == [
        SkippedLine(6, "the file ends mid-line: last record ignored (truncated file?)")
    ]


def test_dpkg_not_a_status_file() -> None:
    with pytest.raises(InvalidInput, match="binary data"):
        parse_dpkg_status("Package: a\x00\x01\x02")
    with pytest.raises(InvalidInput, match="not a dpkg status file"):
        parse_dpkg_status("just some text\nwith lines\n")
    assert parse_dpkg_status("") == ([], [])
    assert parse_dpkg_status("\n\n") == ([], [])


# -- rpm --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("openssl-libs-3.0.7-27.el9.x86_64", ("openssl-libs", "3.0.7-27.el9", "x86_64")),
        ("python3-dateutil-2.8.1-7.el9.noarch", ("python3-dateutil", "2.8.1-7.el9", "noarch")),
        ("bind-libs-32:9.16.23-14.el9.x86_64", ("bind-libs", "32:9.16.23-14.el9", "x86_64")),
        ("kernel-5.14.0-362.8.1.el9_3.x86_64", ("kernel", "5.14.0-362.8.1.el9_3", "x86_64")),
        ("glibc-2.28-225.el8.i686", ("glibc", "2.28-225.el8", "i686")),
        (
            "vim-minimal-2:8.2.2637-20.el9_1.aarch64",
            ("vim-minimal", "2:8.2.2637-20.el9_1", "aarch64"),
        ),
        ("bash-4.1.2-15.el6_4", ("bash", "4.1.2-15.el6_4", "")),  # old rpm: no arch
        ("tzdata-2023c-1.el9.noarch", ("tzdata", "2023c-1.el9", "noarch")),
        ("libstdc++-11.3.1-4.3.el9.x86_64", ("libstdc++", "11.3.1-4.3.el9", "x86_64")),
        ("perl-Net-SSLeay-1.92-2.el9.x86_64", ("perl-Net-SSLeay", "1.92-2.el9", "x86_64")),
    ],
)
def test_rpm_nevra_lines(line: str, expected: tuple[str, str, str]) -> None:
    [package], skipped = parse_rpm_qa(line + "\n")
    assert (package.name, package.version, package.arch) == expected
    assert package.ecosystem == "rpm"
    assert package.source_name is None and package.source_version is None
    assert skipped == []


def test_rpm_query_format_lines() -> None:
    text = (
        "openssl-libs\t1:3.0.7-27.el9\tx86_64\topenssl-3.0.7-27.el9.src.rpm\n"
        "bash\t0:5.1.8-6.el9_1\tx86_64\tbash-5.1.8-6.el9_1.src.rpm\n"
        "gpg-pubkey\t0:fd431d51-4ae0493b\t(none)\t(none)\n"
        "kernel\t0:5.14.0-284.11.1.el9_2\tx86_64\tkernel-5.14.0-284.11.1.el9_2.src.rpm\n"
        "kernel\t0:5.14.0-362.8.1.el9_3\tx86_64\tkernel-5.14.0-362.8.1.el9_3.src.rpm\n"
        # The agent's format: NAME EPOCH VERSION RELEASE ARCH SOURCERPM
        "tzdata\t(none)\t2023c\t1.el9\tnoarch\ttzdata-2023c-1.el9.src.rpm\n"
    )
    packages, skipped = parse_rpm_qa(text)
    assert packages == [
        InstalledPackage(
            "rpm", "openssl-libs", "1:3.0.7-27.el9", "x86_64", "openssl", "1:3.0.7-27.el9"
        ),
        InstalledPackage("rpm", "bash", "5.1.8-6.el9_1", "x86_64", "bash", "5.1.8-6.el9_1"),
        InstalledPackage(
            "rpm", "kernel", "5.14.0-284.11.1.el9_2", "x86_64", "kernel", "5.14.0-284.11.1.el9_2"
        ),
        InstalledPackage(
            "rpm", "kernel", "5.14.0-362.8.1.el9_3", "x86_64", "kernel", "5.14.0-362.8.1.el9_3"
        ),
        InstalledPackage("rpm", "tzdata", "2023c-1.el9", "noarch", "tzdata", "2023c-1.el9"),
    ]
    assert skipped == [SkippedLine(3, "gpg-pubkey: an imported signing key, not software")]


def test_rpm_bad_lines() -> None:
    text = (
        "openssl-libs-3.0.7-27.el9.x86_64\n"
        "gpg-pubkey-fd431d51-4ae0493b\n"
        "nodashes\n"
        "a\tb\tc\n"
        "x\tnot-an-evr\tx86_64\tx-1-1.src.rpm\n"
        "y\t1:2-3\tx86_64\tnot-a-source-rpm\n"
        "\n"
    )
    packages, skipped = parse_rpm_qa(text)
    assert [p.name for p in packages] == ["openssl-libs"]
    assert [line for line, _ in skipped] == [2, 3, 4, 5, 6]
    assert all(isinstance(s, SkippedLine) for s in skipped)  # (line, reason) pairs, named
    reasons = [reason for _, reason in skipped]
    assert reasons[0].startswith("gpg-pubkey")
    assert reasons[1] == "not NAME-VERSION-RELEASE.ARCH"
    assert "expected 4" in reasons[2]
    assert "x: rpm version" in reasons[3]  # "not-an-evr": '-' inside the version
    assert "source rpm" in reasons[4]


def test_rpm_not_rpm_output() -> None:
    with pytest.raises(InvalidInput, match="binary data"):
        parse_rpm_qa("\x7fELF\x00\x00")
    with pytest.raises(InvalidInput, match="not rpm -qa output"):
        parse_rpm_qa("hello\nworld\n")


@pytest.mark.skipif(
    shutil.which("rpmbuild") is None or shutil.which("rpm") is None,
    reason="needs rpm and rpmbuild",
)
def test_real_rpm_output_both_formats(tmp_path: Path) -> None:
    spec = tmp_path / "demo.spec"
    spec.write_text(
        "Name: python3-demo-tool\nEpoch: 2\nVersion: 1.0.3\nRelease: 4.el9\nSummary: demo\n"
        "License: MIT\nBuildArch: noarch\n%description\ndemo\n"
        "%package -n demo-libs\nSummary: libs\n%description -n demo-libs\nlibs\n"
        "%files\n%files -n demo-libs\n",
        encoding="utf-8",
    )
    db = tmp_path / "db"
    db.mkdir()
    defines = ["--define", f"_topdir {tmp_path}", "--define", f"_dbpath {db}"]
    subprocess.run(
        ["rpmbuild", *defines, "-bb", str(spec)], capture_output=True, env=TOOL_ENV, check=True
    )
    rpms = sorted(str(p) for p in (tmp_path / "RPMS").rglob("*.rpm"))
    rpm = ["rpm", "--dbpath", str(db)]
    subprocess.run(
        [*rpm, "-i", "--justdb", "--nodeps", *rpms], capture_output=True, env=TOOL_ENV, check=True
    )

    def query(*extra: str) -> str:
        return subprocess.run(
            [*rpm, "-qa", *extra], capture_output=True, text=True, env=TOOL_ENV, check=True
        ).stdout

    packages, skipped = parse_rpm_qa(
        query("--qf", RPM_QUERY_FORMAT.replace("\\t", "\t").replace("\\n", "\n"))
    )
    assert skipped == []
    assert sorted(packages) == [
        InstalledPackage(
            "rpm", "demo-libs", "2:1.0.3-4.el9", "noarch", "python3-demo-tool", "2:1.0.3-4.el9"
        ),
        InstalledPackage(
            "rpm",
            "python3-demo-tool",
            "2:1.0.3-4.el9",
            "noarch",
            "python3-demo-tool",
            "2:1.0.3-4.el9",
        ),
    ]
    # Plain rpm -qa shows neither epoch nor source: what the docstring warns about.
    plain, skipped = parse_rpm_qa(query())
    assert skipped == []
    assert sorted(plain) == [
        InstalledPackage("rpm", "demo-libs", "1.0.3-4.el9", "noarch"),
        InstalledPackage("rpm", "python3-demo-tool", "1.0.3-4.el9", "noarch"),
    ]


# -- pip ----------------------------------------------------------------------------------

REQUIREMENTS = """\
# a comment
Django==4.2.1
zope.interface==5.4.0  # inline comment
requests[socks]==2.31.0

-r other.txt
--requirement=more.txt
-c constraints.txt
-e git+https://github.com/example/project.git#egg=project
--index-url https://pypi.example/simple
flask>=2.0
numpy
pandas==2.*
mylib @ https://example.com/mylib-1.0.whl
https://example.com/other-1.0.tar.gz
./local/path
colorama==0.4.6 ; sys_platform == "win32"
urllib3==2.0.7 \\
    --hash=sha256:0000000000000000000000000000000000000000000000000000000000000000
Django==4.2.2
not a requirement at all
arbitrary===some-text
colorama==0.4.5 ; sys_platform == "cygwin"
colorama==0.4.5 ; sys_platform == "msys"
"""


def test_requirements() -> None:
    packages, skipped = parse_requirements(REQUIREMENTS)
    assert packages == [
        InstalledPackage("pypi", "django", "4.2.1"),
        InstalledPackage("pypi", "zope-interface", "5.4.0"),
        InstalledPackage("pypi", "requests", "2.31.0"),
        # Pins under environment markers are scanned, each version once.
        InstalledPackage("pypi", "colorama", "0.4.6"),
        InstalledPackage("pypi", "urllib3", "2.0.7"),
        InstalledPackage("pypi", "arbitrary", "some-text"),
        InstalledPackage("pypi", "colorama", "0.4.5"),
    ]
    reasons = dict(skipped)
    assert reasons == {
        6: "includes another requirements file: scan that file too",
        7: "includes another requirements file: scan that file too",
        8: "constraints file: constraints install nothing",
        9: "editable install (a source tree): no released version to check",
        10: "pip option --index-url: not a package",
        11: "flask: not pinned to one version (>=2.0); pin with ==",
        12: "numpy: not pinned to one version (no version); pin with ==",
        13: "pandas: not pinned to one version (==2.*); pin with ==",
        14: "mylib: direct URL reference, no version",
        15: "URL or path: no released version to check",
        16: "URL or path: no released version to check",
        20: "django: listed again (first on line 2)",
        21: reasons[21],
        24: "colorama: listed again (first on line 17)",
    }
    assert reasons[21].startswith("not a requirement: ")


def test_requirements_binary_garbage() -> None:
    with pytest.raises(InvalidInput, match="binary data"):
        parse_requirements("Django==4.2\n\x00\x00garbage")
    assert parse_requirements("") == ([], [])
    assert parse_requirements("# only a comment\n\n") == ([], [])
