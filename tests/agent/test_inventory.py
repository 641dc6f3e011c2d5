from __future__ import annotations

from pathlib import Path

from patchwarden.agent.collectors import COLLECTORS
from patchwarden.agent.collectors.base import CollectorOutput, ok, skipped
from patchwarden.agent.host import Host, LocalHost
from patchwarden.agent.inventory import collect_inventory
from tests.agent.fakes import FakeHost, make_sandbox_root


def _explodes(host: Host) -> CollectorOutput:
    raise RuntimeError("disk on fire")


def _os_part(host: Host) -> CollectorOutput:
    return ok({"os": {"id": "debian"}, "hostname": "a"})


def _more_os(host: Host) -> CollectorOutput:
    return ok({"os": {"release": "12.5"}}, packages=[_pkg("zlib1g", "1:1.2.13.dfsg-1")])


def _pkg(name: str, version: str) -> dict[str, str | None]:
    return {
        "ecosystem": "deb",
        "name": name,
        "version": version,
        "arch": "amd64",
        "status": "installed",
    }


def test_a_failing_collector_does_not_stop_the_others() -> None:
    inventory = collect_inventory(
        FakeHost(), {"first": _os_part, "broken": _explodes, "last": _more_os}
    )
    assert inventory["collector_notes"] == [
        {"collector": "first", "status": "ok", "message": ""},
        {"collector": "broken", "status": "error", "message": "RuntimeError: disk on fire"},
        {"collector": "last", "status": "ok", "message": ""},
    ]
    # Nested facts from two collectors are merged key by key.
    assert inventory["facts"] == {"os": {"id": "debian", "release": "12.5"}, "hostname": "a"}
    assert [p["name"] for p in inventory["packages"]] == ["zlib1g"]


def test_invalid_packages_are_left_out_with_a_note() -> None:
    def bad(host: Host) -> CollectorOutput:
        return ok(packages=[_pkg("good", "1.0"), _pkg("bad name; rm -rf /", "1.0")])

    inventory = collect_inventory(FakeHost(), {"bad": bad})
    assert [p["name"] for p in inventory["packages"]] == ["good"]
    (note,) = inventory["collector_notes"]
    assert note["status"] == "ok"
    assert note["message"].startswith("1 invalid package entries left out (first: name ")


def test_skipped_collectors_are_reported() -> None:
    inventory = collect_inventory(FakeHost(), {"nothing": lambda host: skipped("no tool")})
    assert inventory["facts"] == {}
    assert inventory["packages"] == []
    assert inventory["collector_notes"] == [
        {"collector": "nothing", "status": "skipped", "message": "no tool"}
    ]


def test_default_registry_on_a_sandbox_root(tmp_path: Path) -> None:
    inventory = collect_inventory(LocalHost(str(make_sandbox_root(tmp_path))))
    notes = {n["collector"]: n["status"] for n in inventory["collector_notes"]}
    assert list(notes) == list(COLLECTORS)
    assert notes == {
        "os_release": "ok",
        "system": "ok",
        "network": "skipped",
        "virtualization": "skipped",
        "firmware": "skipped",
        "dpkg": "ok",
        "rpm": "skipped",
        "apk": "skipped",
    }
    assert inventory["facts"]["hostname"] == "sandbox-host"
    assert inventory["facts"]["os"]["release"] == "12.5"
    assert len(inventory["packages"]) == 6


def test_registry_names() -> None:
    assert set(COLLECTORS) == {
        "os_release",
        "system",
        "network",
        "virtualization",
        "firmware",
        "dpkg",
        "rpm",
        "apk",
    }
