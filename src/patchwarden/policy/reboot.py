"""Which package updates need a reboot to take effect.

The lists follow the tools admins already trust, not guesses:

* rpm: dnf needs-restarting's ``NEED_REBOOT`` (dnf-plugins-core,
  plugins/needs_restarting.py, taken there from Red Hat's knowledge-base
  solution 27943): kernel, kernel-rt, glibc, linux-firmware, systemd, dbus,
  dbus-broker, dbus-daemon. Since RHEL 8 / Fedora the kernel is split into
  kernel-core and kernel-modules* (dnf finds them through the
  ``installonlypkg(kernel)`` provide); those are listed by name here, and the
  same for kernel-rt. kernel-devel, -headers and -tools are left out: they do
  not change the running system.
* deb: the same components under their Debian/Ubuntu names: the kernel
  (linux-image-*, Ubuntu's linux-modules-*), firmware (linux-firmware,
  Debian's firmware-*), glibc (libc6, libc-bin), systemd and udev (one source
  package on Debian, one rpm on Red Hat), dbus (dbus, dbus-daemon,
  dbus-broker); plus CPU microcode (intel-microcode, amd64-microcode), which
  needrestart reports as needing a reboot alongside the kernel.
* apk: Alpine's kernel flavours (linux-lts, linux-virt, linux-edge,
  linux-rpi*), linux-firmware*, and musl, its C library.

Libraries such as OpenSSL are not here: updating them needs the services
that use them restarted (needrestart, needs-restarting -s), not the machine.
Other schemes (pep440, semver, generic) never need a reboot.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from patchwarden.policy.patterns import PackagePattern
from patchwarden.versions import get_scheme

_REBOOT_PACKAGES: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "rpm": (
            "kernel",
            "kernel-core",
            "kernel-modules",
            "kernel-modules-core",
            "kernel-modules-extra",
            "kernel-rt",
            "kernel-rt-core",
            "kernel-rt-modules",
            "kernel-rt-modules-core",
            "kernel-rt-modules-extra",
            "glibc",
            "linux-firmware",
            "systemd",
            "dbus",
            "dbus-broker",
            "dbus-daemon",
        ),
        "deb": (
            "linux-image-*",
            "linux-modules-*",
            "linux-firmware",
            "firmware-*",
            "libc6",
            "libc-bin",
            "systemd",
            "udev",
            "dbus",
            "dbus-daemon",
            "dbus-broker",
            "intel-microcode",
            "amd64-microcode",
        ),
        "apk": (
            "linux-lts",
            "linux-virt",
            "linux-edge",
            "linux-rpi*",
            "linux-firmware",
            "linux-firmware-*",
            "musl",
        ),
    }
)
REBOOT_PATTERNS: Final[Mapping[str, tuple[PackagePattern, ...]]] = MappingProxyType(
    {
        scheme: tuple(PackagePattern.parse(text) for text in texts)
        for scheme, texts in _REBOOT_PACKAGES.items()
    }
)


def needs_reboot(name: str, scheme: str) -> bool:
    """Whether updating package `name` under version scheme `scheme` ("deb",
    "rpm", "apk" …) needs a reboot. An unknown scheme raises UnknownVersionScheme.

    >>> needs_reboot("linux-image-6.1.0-18-amd64", "deb"), needs_reboot("openssl", "deb")
    (True, False)
    """
    get_scheme(scheme)  # refuse a typo rather than answer "no reboot"
    return any(pattern.matches(name) for pattern in REBOOT_PATTERNS.get(scheme, ()))
