from __future__ import annotations

from pathlib import Path

from patchwarden.agent.collectors import apk
from patchwarden.agent.host import LocalHost
from patchwarden.protocol.v1 import validate_package
from tests.agent.fakes import write_file

# Shape of a real Alpine 3.19 lib/apk/db/installed (file lists shortened).
INSTALLED = """\
C:Q1f2dSpJ0W7lTAwzbfsGgZ4BoJ5Ho=
P:musl
V:1.2.4_git20230717-r4
A:x86_64
S:407141
I:647168
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Natanael Copa <ncopa@alpinelinux.org>
t:1702305893
c:d8ef9ca1ee1ab0e8e34bb8ca1e46e5da0b1b27a7
F:lib
R:ld-musl-x86_64.so.1
a:0:0:755
Z:Q1ik2MDWmMn3kVXhNbkGiUnBSMiS0=
R:libc.musl-x86_64.so.1
a:0:0:777
Z:Q17yJ3JFNypA4mxhJJr0ou6CzsJVI=

C:Q1iQSN0n6b0vGeBH6ZUqAbIzbeUsU=
P:libcrypto3
V:3.1.4-r5
A:x86_64
o:openssl
F:usr/lib
R:libcrypto.so.3

C:Q1Xv4bcJ5o5aK3wJ2x5lBe0hCtOxY=
P:alpine-baselayout-data
V:3.4.3-r2
A:x86_64
F:etc
R:fstab
"""


def test_sandbox_installed_db(tmp_path: Path) -> None:
    write_file(tmp_path, "/lib/apk/db/installed", INSTALLED)
    output = apk.collect(LocalHost(str(tmp_path)))
    assert output.status == "ok"
    assert output.packages == [
        {
            "ecosystem": "apk",
            "name": "musl",
            "version": "1.2.4_git20230717-r4",
            "arch": "x86_64",
            "source_name": "musl",
            "source_version": "1.2.4_git20230717-r4",
            "status": "installed",
        },
        {
            "ecosystem": "apk",
            "name": "libcrypto3",
            "version": "3.1.4-r5",
            "arch": "x86_64",
            "source_name": "openssl",
            "source_version": "3.1.4-r5",
            "status": "installed",
        },
        {
            "ecosystem": "apk",
            "name": "alpine-baselayout-data",
            "version": "3.4.3-r2",
            "arch": "x86_64",
            "source_name": "alpine-baselayout-data",  # no origin line: its own source
            "source_version": "3.4.3-r2",
            "status": "installed",
        },
    ]
    for package in output.packages:
        assert validate_package(package) is None


def test_skipped_without_db(tmp_path: Path) -> None:
    output = apk.collect(LocalHost(str(tmp_path)))
    assert output.status == "skipped"
    assert "/lib/apk/db/installed" in output.message
