"""Which package updates need a reboot, per package manager; and the
examples in the policy docstrings."""

from __future__ import annotations

import doctest
import importlib

import pytest

from patchwarden.policy import needs_reboot
from patchwarden.versions import UnknownVersionScheme


@pytest.mark.parametrize(
    ("name", "scheme", "reboot"),
    [
        # rpm: dnf needs-restarting's list, plus the split kernel packages
        ("kernel", "rpm", True),
        ("kernel-core", "rpm", True),
        ("kernel-modules", "rpm", True),
        ("kernel-modules-extra", "rpm", True),
        ("kernel-rt", "rpm", True),
        ("kernel-rt-core", "rpm", True),
        ("glibc", "rpm", True),
        ("linux-firmware", "rpm", True),
        ("systemd", "rpm", True),
        ("dbus", "rpm", True),
        ("dbus-broker", "rpm", True),
        ("dbus-daemon", "rpm", True),
        ("kernel-devel", "rpm", False),
        ("kernel-headers", "rpm", False),
        ("kernel-tools", "rpm", False),
        ("glibc-common", "rpm", False),
        ("openssl-libs", "rpm", False),
        ("systemd-libs", "rpm", False),
        # deb
        ("linux-image-6.1.0-18-amd64", "deb", True),
        ("linux-image-amd64", "deb", True),
        ("linux-modules-5.15.0-91-generic", "deb", True),
        ("linux-modules-extra-5.15.0-91-generic", "deb", True),
        ("linux-firmware", "deb", True),
        ("firmware-misc-nonfree", "deb", True),
        ("libc6", "deb", True),
        ("libc-bin", "deb", True),
        ("systemd", "deb", True),
        ("udev", "deb", True),
        ("dbus", "deb", True),
        ("dbus-daemon", "deb", True),
        ("intel-microcode", "deb", True),
        ("amd64-microcode", "deb", True),
        ("linux-headers-6.1.0-18-amd64", "deb", False),
        ("linux-libc-dev", "deb", False),
        ("libssl3", "deb", False),  # services restart, the machine does not
        ("openssh-server", "deb", False),
        ("libc6-dev", "deb", False),
        ("kernel", "deb", False),  # the rpm name means nothing to dpkg
        # apk
        ("linux-lts", "apk", True),
        ("linux-virt", "apk", True),
        ("linux-rpi4", "apk", True),
        ("linux-firmware-intel", "apk", True),
        ("musl", "apk", True),
        ("linux-headers", "apk", False),
        ("linux-pam", "apk", False),
        ("musl-utils", "apk", False),
        # language ecosystems never reboot
        ("django", "pep440", False),
        ("systemd", "semver", False),
    ],
)
def test_needs_reboot(name: str, scheme: str, reboot: bool) -> None:
    assert needs_reboot(name, scheme) is reboot


def test_unknown_scheme_is_an_error() -> None:
    with pytest.raises(UnknownVersionScheme, match="unknown version scheme 'dpkg'"):
        needs_reboot("libc6", "dpkg")


@pytest.mark.parametrize(
    "module",
    [
        "patchwarden.policy",
        "patchwarden.policy.patterns",
        "patchwarden.policy.rules",
        "patchwarden.policy.reboot",
    ],
)
def test_docstring_examples(module: str) -> None:
    assert doctest.testmod(importlib.import_module(module)).failed == 0
