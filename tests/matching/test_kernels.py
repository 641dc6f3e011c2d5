"""Signed kernel wrapper sources and the kernel sources they copy."""

from __future__ import annotations

import pytest

from patchwarden.matching.kernels import signed_kernel_sources, unsigned_kernel_source


@pytest.mark.parametrize(
    ("wrapper", "kernel"),
    [
        ("linux-signed-amd64", "linux"),  # Debian: by architecture
        ("linux-signed-arm64", "linux"),
        ("linux-signed-i386", "linux"),
        ("linux-signed", "linux"),  # Ubuntu: by flavour
        ("linux-signed-hwe-5.15", "linux-hwe-5.15"),
        ("linux-signed-azure", "linux-azure"),
    ],
)
def test_a_wrapper_names_its_kernel_and_back(wrapper: str, kernel: str) -> None:
    assert unsigned_kernel_source(wrapper) == kernel
    assert wrapper in signed_kernel_sources(kernel)


@pytest.mark.parametrize("name", ["linux", "linux-signedness", "openssl", "grub2", "linux-signed-"])
def test_other_sources_are_no_wrappers(name: str) -> None:
    assert unsigned_kernel_source(name) is None


def test_other_sources_have_no_wrappers() -> None:
    assert signed_kernel_sources("openssl") == set()
