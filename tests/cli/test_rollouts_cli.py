"""`patchwarden rollouts ...` and `patchwarden windows ...` through the real
command tree on a fresh data directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from patchwarden.cli import context, output
from patchwarden.cli.main import app
from patchwarden.services import groups
from patchwarden.storage.db import transaction
from tests.services.test_findings import deb, new_asset
from tests.services.test_rollouts import V1, add_patch, approve, make_agent, offer

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("data_dir")


@pytest.fixture(autouse=True)
def wide_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(output.console, "width", 250)


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def ok(*args: str) -> str:
    code, out, err = invoke(*args)
    assert code == 0, (args, out, err)
    return out


def fails(*args: str) -> str:
    code, out, err = invoke(*args)
    assert code == 2, (args, out, err)
    return " ".join(err.split())


@pytest.fixture
def planned() -> dict[str, int]:
    """Assets lab-1 and prod-1 (groups lab, prod) needing an approved patch."""
    factory = context.session_factory()
    patch = add_patch(factory, "pwt-hello")
    approve(factory, patch)
    ids = {}
    for host in ("lab-1", "prod-1"):
        ids[host] = new_asset(factory, host, [deb("pwt-hello", V1)])
        offer(factory, ids[host], patch)
        make_agent(factory, ids[host])
        with transaction(factory) as session:
            groups.create_static(session, "test", host.split("-")[0], [ids[host]])
    return {"patch": patch, **ids}


def create(patch: int, *extra: str) -> int:
    out = ok(
        "rollouts", "create", "--name", "hello", "--patches", str(patch),
        "--ring", "lab=lab", "--ring", "prod=prod", *extra,
    )  # fmt: skip
    return int(out.strip())


def show(rollout_id: int) -> Any:
    return json.loads(ok("rollouts", "show", str(rollout_id), "--format", "json"))


def test_create_with_options_and_move_it(planned: dict[str, int]) -> None:
    rollout_id = create(
        planned["patch"],
        "--max-errors", "10%", "--max-concurrency", "2", "--soak", "600", "--min-success", "90",
        "--signoff", "lab", "--reboot", "always", "--smoke-command", "/usr/bin/test -e '/etc/my app'",
        "--smoke-http", "http://127.0.0.1:8080/health", "--smoke-tcp", "127.0.0.1:22",
        "--smoke-unit", "nginx.service", "--job-timeout", "900",
    )  # fmt: skip
    view = show(rollout_id)
    assert view["state"] == "draft"
    lab, prod = view["rings"]
    assert (lab["max_errors"], lab["max_concurrency"], lab["soak_seconds"]) == ("10%", "2", 600)
    assert lab["require_signoff"] and not prod["require_signoff"]
    assert lab["min_success_percent"] == 90
    options = view["job_options"]
    assert options["reboot"] == "always" and view["job_timeout_seconds"] == 900
    kinds = [(t["kind"], t.get("argv")) for t in options["smoke_tests"]]
    assert kinds[0] == ("command", ["/usr/bin/test", "-e", "/etc/my app"])  # split, never a shell
    assert [k for k, _ in kinds] == ["command", "http", "tcp", "systemd"]
    assert [j["hostname"] for r in view["rings"] for j in r["jobs"]] == ["lab-1", "prod-1"]

    assert ok("rollouts", "start", str(rollout_id)).strip() == f"rollout {rollout_id}: running"
    assert "paused" in ok("rollouts", "pause", str(rollout_id))
    assert "running" in ok("rollouts", "resume", str(rollout_id))
    table = ok("rollouts", "show", str(rollout_id))
    assert "ring 1: lab (lab)" in table and "lab-1" in table
    listed = json.loads(ok("rollouts", "list", "--format", "json"))
    assert [(r["id"], r["state"]) for r in listed] == [(rollout_id, "running")]
    assert "aborted" in ok("rollouts", "abort", str(rollout_id))
    assert "started only when draft" in fails("rollouts", "start", str(rollout_id))


def test_a_template_gives_rings_and_options(planned: dict[str, int], tmp_path: Path) -> None:
    template = tmp_path / "standard.json"
    template.write_text(
        json.dumps(
            {
                "rings": [
                    {"name": "lab", "group": "lab", "soak_seconds": 3600},
                    {"name": "prod", "group": "nobody", "max_concurrency": "25%"},
                ],
                "job_options": {"reboot": "never"},
            }
        )
    )
    out = ok(
        "rollouts", "create", "--name", "t", "--patches", str(planned["patch"]),
        "--template", str(template), "--ring", "prod=prod",
    )  # fmt: skip
    view = show(int(out))
    assert [(r["name"], r["group"], r["soak_seconds"]) for r in view["rings"]] == [
        ("lab", "lab", 3600),
        ("prod", "prod", 0),
    ]
    assert view["rings"][1]["max_concurrency"] == "25%"
    assert view["job_options"]["reboot"] == "never"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--ring", "lab"), "NAME=GROUP"),
        (("--ring", "lab=nope"), "not found"),
        (("--ring", "lab=lab", "--signoff", "qa"), "names no ring"),
        (("--ring", "lab=lab", "--max-errors", "many"), "max errors"),
        (("--ring", "lab=lab", "--smoke-tcp", "localhost"), "HOST:PORT"),
        (("--ring", "lab=lab", "--smoke-command", "'unclosed"), "smoke-command"),
        (("--ring", "lab=lab", "--reboot", "maybe"), "reboot"),
        (("--ring", "lab=lab", "--emergency"), "reason"),
        (("--ring", "lab=lab", "--template", "/nonexistent.json"), "template"),
    ],
)
def test_bad_rollouts_are_refused(
    planned: dict[str, int], args: tuple[str, ...], message: str
) -> None:
    error = fails("rollouts", "create", "--name", "x", "--patches", str(planned["patch"]), *args)
    assert message in error
    assert json.loads(ok("rollouts", "list", "--format", "json")) == []


def test_a_declined_patch_is_refused(planned: dict[str, int]) -> None:
    ok("approvals", "revoke", str(planned["patch"]), "--comment", "regression upstream")
    ok("approvals", "decline", str(planned["patch"]), "--comment", "regression upstream")
    error = fails("rollouts", "create", "--name", "x", "--patches", str(planned["patch"]),
                  "--ring", "lab=lab")  # fmt: skip
    assert "declined" in error


def test_windows_next_in_local_and_utc_time(planned: dict[str, int]) -> None:
    ok("windows", "add", "--group", "lab", "--cron", "0 2 * * 6", "--duration", "120",
       "--timezone", "America/New_York")  # fmt: skip
    ok("windows", "blackout", "--group", "lab", "--start", "2000-01-01T00:00:00+00:00",
       "--end", "2000-02-01T00:00:00+00:00", "--reason", "y2k freeze")  # fmt: skip
    shown = json.loads(ok("windows", "show", "--group", "lab"))
    assert shown["windows"][0]["cron"] == "0 2 * * 6"
    assert shown["blackouts"][0]["reason"] == "y2k freeze"
    openings = json.loads(
        ok("windows", "next", "--group", "lab", "--count", "3", "--format", "json")
    )
    assert len(openings) == 3
    for opening in openings:
        assert "T02:00:00" in opening["local_start"] and opening["timezone"] == "America/New_York"
        assert (opening["start"].endswith("+00:00") and "T06:00:00" in opening["start"]) or (
            "T07:00:00" in opening["start"]
        )
    table = ok("windows", "next", "--group", "lab")
    assert "America/New_York" in table
    assert "exactly one" in fails("windows", "next")
    assert "cron" in fails("windows", "add", "--group", "lab", "--cron", "99 * * * *",
                           "--duration", "60")  # fmt: skip
    assert "timezone" in fails("windows", "add", "--asset", str(planned["lab-1"]), "--cron",
                               "0 2 * * *", "--duration", "60", "--timezone", "Nowhere/City")  # fmt: skip
    ok("windows", "clear", "--group", "lab")
    assert json.loads(ok("windows", "show", "--group", "lab"))["windows"] == []


def test_watch_follows_a_rollout_until_it_finishes(planned: dict[str, int]) -> None:
    rollout_id = create(planned["patch"])
    ok("rollouts", "abort", str(rollout_id))
    out = ok("rollouts", "watch", str(rollout_id), "--interval", "0.2")
    assert f"rollout {rollout_id}" in out and "aborted" in out and "lab-1" in out
    assert "rollout 999 not found" in fails("rollouts", "watch", "999")
