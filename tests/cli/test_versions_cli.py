"""`patchwarden versions compare`, run in-process on the sub-app."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from patchwarden.cli.versions import app

runner = CliRunner()


@pytest.mark.parametrize(
    ("scheme", "a", "b", "expected"),
    [
        ("deb", "1.0~rc1-1", "1.0-1", "-1"),
        ("rpm", "1:1.0-1.el9", "2.0-1.el9", "1"),
        ("apk", "1.2.3-r0", "1.2.3-r0", "0"),
        ("pep440", "1.0-alpha1", "1.0a1", "0"),
        ("semver", "1.0.0-rc.1", "1.0.0", "-1"),
        ("generic", "1.10", "1.9", "1"),
    ],
)
def test_compare_one_pair(scheme: str, a: str, b: str, expected: str) -> None:
    result = runner.invoke(app, ["compare", "--scheme", scheme, a, b])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"{expected}\n"


def test_version_starting_with_dash_after_double_dash() -> None:
    result = runner.invoke(app, ["compare", "-s", "generic", "--", "-1", "1"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "0\n"


def test_invalid_version_is_exit_2_with_the_rule() -> None:
    result = runner.invoke(app, ["compare", "--scheme", "deb", "a:1", "1"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "deb version 'a:1': epoch must be a number" in result.stderr


def test_unknown_scheme_lists_valid_ones() -> None:
    result = runner.invoke(app, ["compare", "--scheme", "debian", "1", "2"])
    assert result.exit_code == 2
    assert "valid schemes: apk, deb, generic, pep440, rpm, semver" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["compare", "--scheme", "deb", "1"], "give two versions to compare, or --batch FILE"),
        (["compare", "--scheme", "deb", "1", "2", "--batch", "x"], "not both"),
    ],
)
def test_usage_errors(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.stderr


def test_batch(tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("# dpkg pairs\n1.0\t2.0\n\n  \n1:1.0\t2.0\r\n2.0\t2.0\n", encoding="utf-8")
    result = runner.invoke(app, ["compare", "--scheme", "deb", "--batch", str(pairs)])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "-1\n1\n0\n"


def test_batch_from_stdin() -> None:
    result = runner.invoke(
        app, ["compare", "--scheme", "rpm", "--batch", "-"], input="1.0-1\t1.0-2\n"
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "-1\n"


def test_batch_errors_name_every_bad_line_and_print_no_results(tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("1.0\t2.0\n1.0 2.0\n1.0\ta:1\n1\t2\t3\n", encoding="utf-8")
    result = runner.invoke(app, ["compare", "--scheme", "deb", "--batch", str(pairs)])
    assert result.exit_code == 2
    assert result.stdout == ""
    errors = result.stderr.splitlines()
    assert errors == [
        f"error: {pairs}:2: expected two tab-separated versions, got 1 field(s)",
        f"error: {pairs}:3: deb version 'a:1': epoch must be a number "
        "(dpkg: [epoch:]upstream[-revision])",
        f"error: {pairs}:4: expected two tab-separated versions, got 3 field(s)",
    ]


def test_batch_error_list_is_capped(tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("bad\n" * 30, encoding="utf-8")
    result = runner.invoke(app, ["compare", "--scheme", "deb", "--batch", str(pairs)])
    assert result.exit_code == 2
    assert result.stderr.count("error:") == 20
    assert "and 10 more errors" in result.stderr


def test_batch_missing_file(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["compare", "--scheme", "deb", "--batch", str(tmp_path / "nope.tsv")]
    )
    assert result.exit_code == 2
    assert "cannot read" in result.stderr
    assert "No such file or directory" in result.stderr


def test_batch_not_utf8(tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.tsv"
    pairs.write_bytes(b"1.0\t\xff\n")
    result = runner.invoke(app, ["compare", "--scheme", "deb", "--batch", str(pairs)])
    assert result.exit_code == 2
    assert "not UTF-8 text" in result.stderr
