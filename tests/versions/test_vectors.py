"""Every upstream vector in shared/data/versions, one test case per row."""

from __future__ import annotations

import pytest

from patchwarden.versions import compare, sort_key
from patchwarden.versions.apk import fuzzy_match, is_valid
from patchwarden.versions.rpm import rpmvercmp
from tests.versions.vectors import VERSIONS, read_tsv, require, tsv_params

COMPARE_FILES = [
    ("deb", "dpkg_version_compare.tsv"),
    ("rpm", "rpm_vercmp.tsv"),
    ("apk", "apk_version_compare.tsv"),
    ("semver", "semver_compare.tsv"),
]


def _check(scheme: str, a: str, b: str, expected: int) -> None:
    assert compare(scheme, a, b) == expected
    assert compare(scheme, b, a) == -expected
    key_a, key_b = sort_key(scheme, a), sort_key(scheme, b)
    assert (key_a == key_b) == (expected == 0)
    if expected == 0:
        assert hash(key_a) == hash(key_b)


@pytest.mark.parametrize(
    ("a", "b", "expected"), tsv_params("dpkg_version_compare.tsv", "a", "b", "expected")
)
def test_dpkg_vectors(a: str, b: str, expected: str) -> None:
    _check("deb", a, b, int(expected))


@pytest.mark.parametrize(("a", "b", "expected"), tsv_params("rpm_vercmp.tsv", "a", "b", "expected"))
def test_rpm_vectors(a: str, b: str, expected: str) -> None:
    _check("rpm", a, b, int(expected))
    assert rpmvercmp(a, b) == int(expected)  # the raw segment comparison too


@pytest.mark.parametrize(
    ("a", "b", "expected"), tsv_params("apk_version_compare.tsv", "a", "b", "expected")
)
def test_apk_vectors(a: str, b: str, expected: str) -> None:
    _check("apk", a, b, int(expected))


@pytest.mark.parametrize(
    ("a", "op", "b", "expected"),
    tsv_params("apk_version_fuzzy_match.tsv", "a", "op", "b", "expected_match"),
)
def test_apk_fuzzy_vectors(a: str, op: str, b: str, expected: str) -> None:
    assert fuzzy_match(a, op, b) is (expected == "true")


@pytest.mark.parametrize(
    ("version", "valid"), tsv_params("apk_version_validity.tsv", "version", "valid")
)
def test_apk_validity_vectors(version: str, valid: str) -> None:
    assert is_valid(version) is (valid == "true")


@pytest.mark.parametrize(
    ("a", "b", "expected"), tsv_params("semver_compare.tsv", "a", "b", "expected")
)
def test_semver_vectors(a: str, b: str, expected: str) -> None:
    _check("semver", a, b, int(expected))


def test_pep440_all_8564_pairs() -> None:
    """8,564 rows: one test, listing every mismatch, keeps collection fast."""
    require(VERSIONS / "pep440_version_compare.tsv")
    rows = read_tsv("pep440_version_compare.tsv")
    assert len(rows) == 8564
    mismatches = [
        (row["a"], row["b"], row["expected"], got)
        for row in rows
        if (got := compare("pep440", row["a"], row["b"])) != int(row["expected"])
    ]
    assert mismatches == []


def test_pep440_sorted_list_sorts_to_itself() -> None:
    path = require(VERSIONS / "pep440_versions_sorted.txt")
    versions = [line for line in path.read_text(encoding="utf-8").splitlines() if line]
    assert len(versions) == 92
    assert sorted(reversed(versions), key=lambda v: sort_key("pep440", v)) == versions


def test_every_compare_file_is_covered() -> None:
    """A new vector file in shared/data must not be silently ignored."""
    require(VERSIONS / "dpkg_version_compare.tsv")
    known = {name for _, name in COMPARE_FILES} | {
        "apk_version_fuzzy_match.tsv",
        "apk_version_validity.tsv",
        "pep440_version_compare.tsv",
    }
    assert {p.name for p in VERSIONS.glob("*.tsv")} == known
