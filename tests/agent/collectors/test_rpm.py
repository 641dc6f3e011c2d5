from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from patchwarden.agent.collectors import rpm
from patchwarden.agent.host import LocalHost
from patchwarden.protocol.v1 import validate_package
from tests.agent.fakes import FakeHost, result

HELLO_SPEC = """\
Name: pwtest-hello
Epoch: 2
Version: 1.2.3
Release: 4.pw
Summary: Patchwarden test package with an epoch
License: MIT

%description
Test package.

%package -n pwtest-hello-doc
Summary: Noarch sub-package of pwtest-hello
BuildArch: noarch

%description -n pwtest-hello-doc
Documentation.

%files

%files -n pwtest-hello-doc
"""

UTIL_SPEC = """\
Name: pwtest-util
Version: 0.9
Release: 1
Summary: Patchwarden test package without an epoch
License: MIT

%description
Test package.

%files
"""


def _run(argv: list[str]) -> str:
    completed = subprocess.run(
        argv, capture_output=True, text=True, env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"}
    )
    assert completed.returncode == 0, f"{argv[0]} failed: {completed.stderr}"
    return completed.stdout


@pytest.fixture(scope="module")
def rpm_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root whose rpm database holds three real packages built here."""
    for tool in ("rpm", "rpmbuild"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (apt-get install rpm)")
    work = tmp_path_factory.mktemp("rpmbuild")
    for name, spec in (("hello", HELLO_SPEC), ("util", UTIL_SPEC)):
        spec_path = work / f"{name}.spec"
        spec_path.write_text(spec)
        _run(
            [
                "rpmbuild",
                "--define", "_topdir %s" % (work / "top"),
                "--define", "_build_id_links none",
                "-bb", str(spec_path),
            ]
        )  # fmt: skip
    built = sorted(str(p) for p in (work / "top" / "RPMS").rglob("*.rpm"))
    assert len(built) == 3
    root = work / "root"
    root.mkdir()
    # Debian's rpm keeps its database in ~/.rpmdb by default; use the standard path.
    _run(["rpm", "--root", str(root), "--dbpath", "/var/lib/rpm", "--initdb"])
    _run(
        [
            "rpm",
            "--root",
            str(root),
            "--dbpath",
            "/var/lib/rpm",
            "-i",
            "--nodeps",
            "--justdb",
            *built,
        ]
    )
    return root


def test_collects_real_rpm_database(rpm_root: Path) -> None:
    arch = _run(["rpm", "--eval", "%{_target_cpu}"]).strip()
    output = rpm.collect(LocalHost(str(rpm_root)))
    assert output.status == "ok", output.message
    assert sorted(output.packages or [], key=lambda p: str(p["name"])) == [
        {
            "ecosystem": "rpm",
            "name": "pwtest-hello",
            "version": "2:1.2.3-4.pw",
            "arch": arch,
            "source_name": "pwtest-hello",
            "source_version": "2:1.2.3-4.pw",
            "status": "installed",
        },
        {
            "ecosystem": "rpm",
            "name": "pwtest-hello-doc",
            "version": "2:1.2.3-4.pw",
            "arch": "noarch",
            "source_name": "pwtest-hello",
            "source_version": "2:1.2.3-4.pw",
            "status": "installed",
        },
        {
            "ecosystem": "rpm",
            "name": "pwtest-util",
            "version": "0.9-1",
            "arch": arch,
            "source_name": "pwtest-util",
            "source_version": "0.9-1",
            "status": "installed",
        },
    ]
    for package in output.packages or []:
        assert validate_package(package) is None


def test_version_is_rpms_own_evr(rpm_root: Path) -> None:
    evrs = _run(
        [
            "rpm",
            "--root",
            str(rpm_root),
            "--dbpath",
            "/var/lib/rpm",
            "-qa",
            "--qf",
            "%{NAME} %{EVR}\\n",
        ]
    )
    expected = dict(line.split(" ") for line in evrs.splitlines())
    output = rpm.collect(LocalHost(str(rpm_root)))
    assert {str(p["name"]): p["version"] for p in output.packages or []} == expected


def test_skipped_without_database() -> None:
    # /var/lib/rpm present but empty, as on Debian with the rpm package installed.
    output = rpm.collect(FakeHost(programs=["rpm"], dirs=["/var/lib/rpm"]))
    assert output.status == "skipped"
    assert "no rpm database" in output.message


@pytest.mark.skipif(shutil.which("rpm") is None, reason="rpm is not installed")
def test_skipped_for_a_root_without_database(tmp_path: Path) -> None:
    (tmp_path / "var/lib/rpm").mkdir(parents=True)
    output = rpm.collect(LocalHost(str(tmp_path)))
    assert output.status == "skipped"
    assert str(tmp_path) in output.message


def test_skipped_without_rpm_binary() -> None:
    host = FakeHost(files={"/var/lib/rpm/rpmdb.sqlite": ""})
    output = rpm.collect(host)
    assert (output.status, output.message) == ("skipped", "`rpm` is not installed")
    assert host.calls == []


QUERY = (
    "rpm",
    "--root",
    "/",
    "--dbpath",
    "/usr/lib/sysimage/rpm",
    "-qa",
    "--qf",
    rpm.QUERY_FORMAT,
)


def test_pseudo_packages_and_absent_tags() -> None:
    stdout = (
        "gpg-pubkey\t(none)\tfd431d51\t4ae0493b\t(none)\t(none)\n"
        "kernel-core\t(none)\t5.14.0\t362.8.1.el9_3\tx86_64\tkernel-5.14.0-362.8.1.el9_3.src.rpm\n"
        "kernel-core\t(none)\t5.14.0\t284.11.1.el9_2\tx86_64\tkernel-5.14.0-284.11.1.el9_2.src.rpm\n"
        "shadow-utils\t2\t4.9\t8.el9\tx86_64\tshadow-utils-4.9-8.el9.src.rpm\n"
    )
    host = FakeHost(
        files={"/usr/lib/sysimage/rpm/rpmdb.sqlite": ""},
        commands={QUERY: result(stdout)},
    )
    output = rpm.collect(host)
    assert output.status == "ok"
    assert [
        (p["name"], p["version"], p["source_name"], p["source_version"])
        for p in output.packages or []
    ] == [
        ("kernel-core", "5.14.0-362.8.1.el9_3", "kernel", "5.14.0-362.8.1.el9_3"),
        ("kernel-core", "5.14.0-284.11.1.el9_2", "kernel", "5.14.0-284.11.1.el9_2"),
        ("shadow-utils", "2:4.9-8.el9", "shadow-utils", "2:4.9-8.el9"),
    ]


def test_rpm_failure_is_an_error_note() -> None:
    host = FakeHost(
        files={"/usr/lib/sysimage/rpm/rpmdb.sqlite": ""},
        commands={QUERY: result("", returncode=1, stderr="error: cannot open Packages database\n")},
    )
    output = rpm.collect(host)
    assert output.status == "error"
    assert "cannot open Packages database" in output.message


@pytest.mark.parametrize(
    ("source_rpm", "expected"),
    [
        ("bash-5.1.8-6.el9_1.src.rpm", ("bash", "5.1.8-6.el9_1")),
        ("python3.11-3.11.5-1.el9.src.rpm", ("python3.11", "3.11.5-1.el9")),
        ("glibc-2.34-60.el9.nosrc.rpm", ("glibc", "2.34-60.el9")),
        ("(none)", (None, None)),
        ("garbage", (None, None)),
    ],
)
def test_parse_source_rpm(source_rpm: str, expected: tuple[str | None, str | None]) -> None:
    assert rpm.parse_source_rpm(source_rpm) == expected
