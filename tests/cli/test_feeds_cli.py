"""`patchwarden feeds import PATH`: exit 0 when something was stored, 1 when the
input was rejected whole (nothing stored), 2 on a usage error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from patchwarden.cli import context
from patchwarden.cli.vulns import feeds_app
from patchwarden.storage.tables import EpssScoreRow, KevEntryRow
from tests.services.test_feeds import KEV_LOG4SHELL, KEV_PWNKIT, kev_catalogue

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("data_dir")

KEV_JSON = json.dumps(kev_catalogue(KEV_PWNKIT, KEV_LOG4SHELL), indent=1)
EPSS_MIXED = (
    "#model_version:v2025.03.14,score_date:2025-08-26T12:55:00Z\n"
    "cve,epss,percentile\n"
    "CVE-2021-4034,0.85911,0.99351\n"
    "CVE-2022-2068,abc,0.5\n"
)


def write(tmp_path: Path, name: str, content: str | bytes) -> str:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return str(path)


def rows(table: type[KevEntryRow] | type[EpssScoreRow]) -> int:
    with context.session_factory()() as session:
        return session.execute(select(func.count()).select_from(table)).scalar_one()


def stderr_text(output: str) -> str:
    return " ".join(output.split())  # rich wraps long lines


@pytest.mark.parametrize(
    ("name", "content", "args", "reason"),
    [
        pytest.param(
            "junk.bin", b"\x00\x01\x02junk" * 50, (), "binary data, not a feed file", id="junk"
        ),
        pytest.param(
            "kev.json",
            KEV_JSON[: len(KEV_JSON) // 2],
            (),
            "not valid JSON (truncated or damaged?)",
            id="truncated-kev",
        ),
        pytest.param(
            "kev.json",
            KEV_JSON,
            ("--format", "epss"),
            "it looks like a 'kev' file: use --format kev",
            id="kev-as-epss",
        ),
    ],
)
def test_input_rejected_whole_exits_1(
    tmp_path: Path, name: str, content: str | bytes, args: tuple[str, ...], reason: str
) -> None:
    path = write(tmp_path, name, content)
    result = runner.invoke(feeds_app, ["import", path, *args])
    assert result.exit_code == 1, result.output
    assert "created 0, updated 0, unchanged 0, withdrawn 0, rejected 1" in result.stdout
    errors = stderr_text(result.stderr)
    assert f"rejected {path}: " in errors
    assert reason in errors
    assert f"error: nothing was imported from {path}: it was rejected (see above)" in errors
    assert rows(KevEntryRow) == rows(EpssScoreRow) == 0


def test_some_records_stored_exits_0_and_lists_each_rejection(tmp_path: Path) -> None:
    path = write(tmp_path, "epss.csv", EPSS_MIXED)
    result = runner.invoke(feeds_app, ["import", path])
    assert result.exit_code == 0, result.output
    assert "created 1, updated 0, unchanged 0, withdrawn 0, rejected 1" in result.stdout
    assert f"rejected {path}:4 CVE-2022-2068: epss 'abc' is not a number" in stderr_text(
        result.stderr
    )
    assert rows(EpssScoreRow) == 1


def test_a_part_left_out_of_a_stored_record_is_not_a_rejected_record(tmp_path: Path) -> None:
    from tests.services.test_feeds import osv_record

    record = osv_record()
    bad = {"package": {"ecosystem": "PyPI", "name": "demo-lib"}, "ranges": [{"type": "SEMVER"}]}
    record["affected"].append(bad)
    path = write(tmp_path, "PYSEC-2099-1.json", json.dumps(record))
    result = runner.invoke(feeds_app, ["import", path])
    assert result.exit_code == 0, result.output
    assert (
        "created 1, updated 0, unchanged 0, withdrawn 0, rejected 0 "
        "(and 1 parts of stored records)" in stderr_text(result.stdout)
    )
    assert f"left out of a stored record {path} PYSEC-2099-1 affected[1]" in stderr_text(
        result.stderr
    )
    listed = runner.invoke(feeds_app, ["imports", "--format", "json"])
    (run,) = json.loads(listed.stdout)
    assert (run["created"], run["rejected"], run["parts_rejected"]) == (1, 0, 1)
    assert [r.get("part") for r in run["rejections"]] == [True]


def test_a_file_already_imported_exits_0(tmp_path: Path) -> None:
    path = write(tmp_path, "kev.json", KEV_JSON)
    assert runner.invoke(feeds_app, ["import", path]).exit_code == 0
    again = runner.invoke(feeds_app, ["import", path])
    assert again.exit_code == 0, again.output
    assert "created 0, updated 0, unchanged 2" in again.stdout


def test_an_empty_directory_exits_1(tmp_path: Path) -> None:
    empty = tmp_path / "feeds"
    empty.mkdir()
    result = runner.invoke(feeds_app, ["import", str(empty)])
    assert result.exit_code == 1
    assert "it holds no feed file" in stderr_text(result.stderr)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(("--format", "debian"), "unknown feed format 'debian'", id="unknown-format"),
        pytest.param(("--no-such-option",), "No such option", id="bad-option"),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    path = write(tmp_path, "kev.json", KEV_JSON)
    result = runner.invoke(feeds_app, ["import", path, *args])
    assert result.exit_code == 2
    assert message in stderr_text(result.stderr)
    assert rows(KevEntryRow) == 0


def test_a_missing_path_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(feeds_app, ["import", str(tmp_path / "nope.json")])
    assert result.exit_code == 2
    assert "does not exist" in stderr_text(result.stderr)


def test_the_help_documents_the_exit_codes() -> None:
    result = runner.invoke(feeds_app, ["import", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert "Exit status: 0 when records were stored" in text
    assert "1 when nothing was stored because the input was rejected whole" in text
    assert "2 on a usage error" in text
