"""`patchwarden cvss score`, run in-process on the sub-app."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from patchwarden.cli.cvss import app

runner = CliRunner()
V31 = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
V4 = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"


def test_score_text() -> None:
    result = runner.invoke(app, ["score", V31])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [f"CVSS 3.1  {V31}", "base score:          9.8 (Critical)"]


def test_score_text_shows_temporal_and_environmental_when_set() -> None:
    result = runner.invoke(app, ["score", V31 + "/E:P/RL:O/CR:H/MAV:L"])
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1] == "base score:          9.8 (Critical)"
    assert lines[2].startswith("temporal score:      8.")
    assert lines[3].startswith("environmental score: ")


def test_score_v4_shows_nomenclature() -> None:
    result = runner.invoke(app, ["score", V4])
    assert result.exit_code == 0, result.stderr
    assert "base score:          9.3 (Critical)  [CVSS-B]" in result.stdout


def test_score_json() -> None:
    result = runner.invoke(app, ["score", "--format", "json", "(AV:N/AC:L/Au:N/C:P/I:P/A:P)"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["version"] == "2.0"
    assert data["vector"] == "AV:N/AC:L/Au:N/C:P/I:P/A:P"
    assert data["base_score"] == 7.5
    assert data["severity"] == "High"
    assert data["temporal_score"] is None
    assert data["metrics"]["Au"] == "N"


def test_bad_vector_is_exit_2() -> None:
    result = runner.invoke(app, ["score", "CVSS:3.1/AV:N"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "invalid CVSS vector 'CVSS:3.1/AV:N': Missing mandatory metrics" in result.stderr


def test_no_vector() -> None:
    result = runner.invoke(app, ["score"])
    assert result.exit_code == 2
    assert "give a CVSS vector, or --batch FILE" in result.stderr


def test_batch(tmp_path: Path) -> None:
    vectors = tmp_path / "vectors.txt"
    vectors.write_text(f"# mixed\n{V31}\n\nAV:N/AC:L/Au:N/C:P/I:P/A:P\n{V4}\n", encoding="utf-8")
    result = runner.invoke(app, ["score", "--batch", str(vectors)])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"9.8\tCritical\t{V31}",
        "7.5\tHigh\tAV:N/AC:L/Au:N/C:P/I:P/A:P",
        f"9.3\tCritical\t{V4}",
    ]


def test_batch_json_lines_from_stdin() -> None:
    result = runner.invoke(app, ["score", "--batch", "-", "--format", "json"], input=V31 + "\n")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["base_score"] == 9.8


def test_batch_errors_name_the_line(tmp_path: Path) -> None:
    vectors = tmp_path / "vectors.txt"
    vectors.write_text(f"{V31}\nCVSS:3.1/AV:X\n", encoding="utf-8")
    result = runner.invoke(app, ["score", "--batch", str(vectors)])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert f"{vectors}:2: invalid CVSS vector 'CVSS:3.1/AV:X'" in result.stderr


def test_batch_and_vector_together_is_an_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["score", V31, "--batch", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "not both" in result.stderr
