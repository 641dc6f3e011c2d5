"""The agent protocol's package validation: whole values only."""

from __future__ import annotations

import pytest

from patchwarden.protocol.v1 import validate_package


def test_a_valid_package_passes() -> None:
    assert (
        validate_package({"ecosystem": "deb", "name": "libc6", "version": "2.36-9+deb12u4"}) is None
    )


@pytest.mark.parametrize(
    "package",
    [
        {
            "ecosystem": "deb",
            "name": "bash\n",
            "version": "5.2-1",
        },  # '$' alone allows a final newline
        {"ecosystem": "deb", "name": "bash", "version": "5.2-1\n"},
        {"ecosystem": "deb", "name": "bash", "version": "5.2-1", "arch": "amd64\n"},
        {"ecosystem": "deb", "name": "foo;rm -rf /", "version": "1"},
        {"ecosystem": "deb", "name": "-o", "version": "1"},
        {"ecosystem": "deb", "name": "$(id)", "version": "1"},
    ],
)
def test_invalid_names_versions_and_arches_are_refused(package: dict[str, str]) -> None:
    assert validate_package(package) is not None
