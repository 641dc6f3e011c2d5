"""Signed kernel images on Debian and Ubuntu.

Their Secure Boot-signed kernel binaries (linux-image-5.10.0-20-amd64) come
from wrapper source packages (linux-signed-amd64 on Debian, linux-signed and
linux-signed-hwe-5.15 on Ubuntu) that only copy the kernel source's signed
builds. Advisories name the kernel source (linux, linux-hwe-5.15), and the
binaries carry its version (5.10.158-2), while the wrapper's own source
version differs (5.10.158+2).
"""

from __future__ import annotations

from typing import Final

SIGNED_PREFIX: Final = "linux-signed"
# Debian names its wrappers by architecture; Ubuntu by the kernel flavour they sign.
DEBIAN_ARCHITECTURES: Final = ("amd64", "arm64", "i386")


def unsigned_kernel_source(source_name: str) -> str | None:
    """The kernel source a signed-kernel wrapper source copies, or None."""
    if source_name == SIGNED_PREFIX:
        return "linux"
    if not source_name.startswith(SIGNED_PREFIX + "-"):
        return None
    flavour = source_name[len(SIGNED_PREFIX) + 1 :]
    if not flavour:
        return None
    return "linux" if flavour in DEBIAN_ARCHITECTURES else f"linux-{flavour}"


def signed_kernel_sources(source_name: str) -> set[str]:
    """The wrapper sources whose binaries an advisory of a kernel source covers."""
    if source_name == "linux":
        return {SIGNED_PREFIX, *(f"{SIGNED_PREFIX}-{arch}" for arch in DEBIAN_ARCHITECTURES)}
    if source_name.startswith("linux-"):
        return {f"{SIGNED_PREFIX}-{source_name[len('linux-') :]}"}
    return set()
