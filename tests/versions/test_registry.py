"""The scheme registry and the module-level helpers."""

from __future__ import annotations

import itertools

import pytest

from patchwarden.errors import InvalidInput
from patchwarden.versions import (
    SCHEMES,
    InvalidVersion,
    UnknownVersionScheme,
    VersionScheme,
    compare,
    get_scheme,
    sort_key,
)


def test_registry_holds_every_scheme_under_its_own_name() -> None:
    assert sorted(SCHEMES) == ["apk", "deb", "generic", "pep440", "rpm", "semver"]
    for name, scheme in SCHEMES.items():
        assert scheme.name == name
        assert isinstance(scheme, VersionScheme)
        assert get_scheme(name) is scheme


def test_registry_is_read_only() -> None:
    with pytest.raises(TypeError):
        SCHEMES["x"] = SCHEMES["deb"]  # type: ignore[index]


def test_unknown_scheme_lists_the_valid_ones() -> None:
    with pytest.raises(UnknownVersionScheme) as caught:
        compare("debian", "1", "2")
    assert str(caught.value) == (
        "unknown version scheme 'debian'; valid schemes: apk, deb, generic, pep440, rpm, semver"
    )
    assert isinstance(caught.value, InvalidInput)


@pytest.mark.parametrize(
    ("scheme", "versions"),
    [
        ("deb", ["1.0-1", "1:0.5", "1.0~rc1-1", "1.0-1+deb12u1", "0.9"]),
        ("rpm", ["1.0-1.el9", "1:0.1-1", "1.0~rc1-1.el9", "1.0^git1-1.el9", "0.9-9"]),
        ("apk", ["1.0-r1", "1.0_rc1-r0", "1.0_p1-r0", "0.9-r9"]),
        ("pep440", ["1.0", "1.0rc1", "1.0.post1", "1!0.1", "0.9"]),
        ("semver", ["1.0.0", "1.0.0-rc.1", "1.0.0-alpha", "0.9.9"]),
        ("generic", ["1.0", "1.0.1", "0.9", "10"]),
    ],
)
def test_sort_key_sorts_like_compare(scheme: str, versions: list[str]) -> None:
    keyed = sorted(versions, key=lambda v: sort_key(scheme, v))
    for older, newer in itertools.pairwise(keyed):
        assert compare(scheme, older, newer) <= 0


@pytest.mark.parametrize("name", sorted(SCHEMES))
def test_every_scheme_rejects_empty_text_naming_itself(name: str) -> None:
    with pytest.raises(InvalidVersion) as caught:
        SCHEMES[name].validate("")
    assert str(caught.value).startswith(f"{name} version '': ")
    assert caught.value.scheme == name
