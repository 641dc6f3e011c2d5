"""`patchwarden import cmdb FILE` through its Typer sub-app, on a fresh data directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from patchwarden.cli import context
from patchwarden.cli.imports import app
from patchwarden.config import get_settings
from patchwarden.storage.tables import Asset, AuditEvent

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("data_dir")

GOOD = b"hostname,ip,criticality,tags\nweb-01,10.0.0.1,2,pci;web\ndb-01,10.0.0.2,1,database\n"
MIXED = GOOD + b"bad,10.0.0.300,2,\nshort\n"


def write(tmp_path: Path, name: str, content: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(content)
    return str(path)


def asset_count() -> int:
    with context.session_factory()() as session:
        return session.execute(select(func.count()).select_from(Asset)).scalar_one()


def audit_actions() -> list[str]:
    with context.session_factory()() as session:
        return list(session.execute(select(AuditEvent.action).order_by(AuditEvent.id)).scalars())


def test_import_prints_a_table_and_exits_0(tmp_path: Path) -> None:
    result = runner.invoke(app, ["cmdb", write(tmp_path, "cmdb.csv", GOOD)])
    assert result.exit_code == 0, result.output
    assert "CMDB import" in result.stdout
    assert "created" in result.stdout
    assert "web-01" in result.stdout
    assert "2 rows: 2 created, 0 updated, 0 unchanged, 0 rejected" in result.stdout
    assert asset_count() == 2

    again = runner.invoke(app, ["cmdb", write(tmp_path, "cmdb.csv", GOOD)])
    assert again.exit_code == 0
    assert "2 rows: 0 created, 0 updated, 2 unchanged, 0 rejected" in again.stdout
    assert audit_actions() == ["asset.cmdb_create"] * 2 + ["import.cmdb"] * 2


def test_rejected_rows_exit_1_and_the_rest_applies(tmp_path: Path) -> None:
    path = write(tmp_path, "export.txt", MIXED)  # format detected from the content
    result = runner.invoke(app, ["cmdb", path, "--output", "json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["format"] == "csv"
    assert report["dry_run"] is False
    assert report["totals"] == {
        "created": 2, "updated": 0, "unchanged": 0, "rejected": 2, "total": 4,
    }  # fmt: skip
    assert [row["action"] for row in report["rows"]] == [
        "created", "created", "rejected", "rejected",
    ]  # fmt: skip
    assert report["rows"][2]["reason"] == "ip: '10.0.0.300' is not an IPv4 or IPv6 address"
    assert report["rows"][3]["reason"] == "line 5: expected 4 fields (as in the header), found 1"
    assert report["rows"][0]["changed_fields"]
    assert asset_count() == 2


def test_dry_run_changes_nothing(tmp_path: Path) -> None:
    path = write(tmp_path, "cmdb.csv", MIXED)
    result = runner.invoke(app, ["cmdb", path, "--dry-run"])
    assert result.exit_code == 1
    assert "dry run: nothing was changed" in result.stdout
    assert "2 would be created" in result.stdout
    assert asset_count() == 0
    assert audit_actions() == []


def test_json_by_extension_and_warnings_on_stderr(tmp_path: Path) -> None:
    content = json.dumps([{"hostname": "web-01", "rack": "r1"}]).encode()
    result = runner.invoke(app, ["cmdb", write(tmp_path, "cmdb.json", content)])
    assert result.exit_code == 0
    assert "warning: ignored unknown columns: rack" in " ".join(result.stderr.split())
    assert asset_count() == 1


def test_format_option_overrides_the_extension(tmp_path: Path) -> None:
    path = write(tmp_path, "cmdb.json", GOOD)
    result = runner.invoke(app, ["cmdb", path, "--format", "csv", "--output", "json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["totals"]["created"] == 2


@pytest.mark.parametrize(
    ("name", "content", "args", "message"),
    [
        ("cmdb.json", b"[{", (), "error: not a valid JSON file"),
        ("cmdb.csv", b"owner\nme\n", (), "error: the CSV header has no identity column"),
        ("cmdb.csv", GOOD, ("--format", "json"), "error: not a valid JSON file"),
    ],
)
def test_unreadable_files_exit_2(
    tmp_path: Path, name: str, content: bytes, args: tuple[str, ...], message: str
) -> None:
    result = runner.invoke(app, ["cmdb", write(tmp_path, name, content), *args])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert message in result.stderr
    assert asset_count() == 0


def test_file_size_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATCHWARDEN_MAX_IMPORT_BYTES", "1024")
    get_settings.cache_clear()
    path = write(tmp_path, "big.csv", GOOD + b"x" * 2000)
    result = runner.invoke(app, ["cmdb", path])
    assert result.exit_code == 2
    assert "is larger than 1024 bytes" in " ".join(result.stderr.split())


def test_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["cmdb", str(tmp_path / "nope.csv")])
    assert result.exit_code == 2
    # Rich boxes the message and wraps it at the terminal's width, which a long
    # temporary path can push onto two lines.
    assert "does not exist" in " ".join(result.stderr.replace("│", " ").split())
