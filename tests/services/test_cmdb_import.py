"""CMDB import on SQLite and PostgreSQL: create, update, unchanged, matching,
rejections that change nothing, dry runs and the audit trail."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from patchwarden.errors import InvalidInput
from patchwarden.services import cmdb_import
from patchwarden.services.audit import verify_chain
from patchwarden.services.cmdb_import import ImportReport, ImportTotals, RowResult, import_cmdb
from patchwarden.storage.db import transaction
from patchwarden.storage.tables import Asset, AuditEvent, InstalledPackage

ACTOR = "test:cmdb"

HEADER = (
    "hostname,serial,ip,device_type,vendor,model,os,os_version,criticality,environment,"
    "owner,timezone,tags,internet_facing,data_sensitivity\n"
)
CSV = (
    HEADER
    + "web-01,SN-1,10.0.0.1,,Dell,R650,debian,12,2,prod,web team,Europe/Berlin,pci;web,yes,\n"
    + "sw-01,SN-2,10.0.9.1,network_device,Cisco,C9300,,,1,prod,netops,,,no,internal\n"
    + "db-01,,10.0.0.3,,,,ubuntu,22.04,,staging,,,database,,restricted\n"
).encode()


def run(
    factory: sessionmaker[Session], content: bytes, fmt: str | None = "csv", dry_run: bool = False
) -> ImportReport:
    return import_cmdb(factory, content, fmt, ACTOR, dry_run=dry_run)  # type: ignore[arg-type]


def dump_assets(factory: sessionmaker[Session]) -> list[dict[str, Any]]:
    """Every column of every asset: to show that something changed nothing."""
    with factory() as session:
        rows = session.execute(select(Asset.__table__).order_by(Asset.id)).mappings().all()
        return [dict(row) for row in rows]


def audit_events(factory: sessionmaker[Session]) -> list[AuditEvent]:
    with factory() as session:
        return list(session.execute(select(AuditEvent).order_by(AuditEvent.id)).scalars())


def by_hostname(factory: sessionmaker[Session], hostname: str) -> Asset:
    with factory() as session:
        return session.execute(select(Asset).where(Asset.hostname == hostname)).scalar_one()


def add_asset(factory: sessionmaker[Session], hostname: str, **values: Any) -> int:
    with transaction(factory) as session:
        asset = Asset(hostname=hostname, source=values.pop("source", "agent"), **values)
        session.add(asset)
        session.flush()
        return asset.id


def actions(report: ImportReport) -> list[str]:
    return [row.action for row in report.rows]


# ---------------------------------------------------------------------------
# Create, re-import, update


def test_create_then_unchanged_then_update(session_factory: sessionmaker[Session]) -> None:
    report = run(session_factory, CSV)
    assert report.format == "csv"
    assert not report.dry_run
    assert actions(report) == ["created"] * 3
    assert report.totals == ImportTotals(created=3)
    assert not report.has_rejections
    web_row = report.rows[0]
    assert (web_row.row, web_row.identity) == (2, "hostname=web-01, serial=SN-1, ip=10.0.0.1")
    assert "criticality" in web_row.changed_fields

    web = by_hostname(session_factory, "web-01")
    assert web.id == web_row.asset_id
    assert (web.source, web.status, web.device_type) == ("cmdb", "active", "server")
    assert (web.serial, web.ip_addresses, web.vendor, web.model) == (
        "SN-1", ["10.0.0.1"], "Dell", "R650",
    )  # fmt: skip
    assert (web.os_id, web.os_version_id, web.criticality, web.environment) == (
        "debian", "12", 2, "prod",
    )  # fmt: skip
    assert (web.owner, web.timezone, web.tags, web.internet_facing) == (
        "web team", "Europe/Berlin", ["pci", "web"], True,
    )  # fmt: skip
    assert web.data_sensitivity == "internal"  # not given: the default
    switch = by_hostname(session_factory, "sw-01")
    assert (switch.device_type, switch.criticality, switch.internet_facing) == (
        "network_device", 1, False,
    )  # fmt: skip
    db = by_hostname(session_factory, "db-01")
    assert (db.serial, db.criticality, db.data_sensitivity) == (None, 3, "restricted")

    events = audit_events(session_factory)
    assert [e.action for e in events] == ["asset.cmdb_create"] * 3 + ["import.cmdb"]
    assert events[0].target_type == "asset"
    assert events[0].target_id == str(web.id)
    assert events[0].actor == ACTOR
    assert events[0].details["row"] == 2
    assert events[0].details["fields"]["tags"] == ["pci", "web"]
    summary = events[-1].details
    assert (summary["format"], summary["rows"], summary["created"], summary["rejected"]) == (
        "csv", 3, 3, 0,
    )  # fmt: skip
    assert len(summary["sha256"]) == 64

    # The same file again changes nothing.
    before = dump_assets(session_factory)
    again = run(session_factory, CSV)
    assert actions(again) == ["unchanged"] * 3
    assert [row.asset_id for row in again.rows] == [row.asset_id for row in report.rows]
    assert dump_assets(session_factory) == before
    assert [e.action for e in audit_events(session_factory)][4:] == ["import.cmdb"]

    # A changed file updates what changed, and only that.
    changed = CSV.replace(b",2,prod,web team,", b",1,prod,shop team,").replace(
        b"database,,restricted", b"database;postgres,,restricted"
    )
    updated = run(session_factory, changed)
    assert actions(updated) == ["updated", "unchanged", "updated"]
    assert updated.rows[0].changed_fields == ("criticality", "owner")
    assert updated.rows[2].changed_fields == ("tags",)
    web_after = by_hostname(session_factory, "web-01")
    assert (web_after.criticality, web_after.owner) == (1, "shop team")
    assert web_after.updated_at > web.updated_at
    assert web_after.created_at == web.created_at
    update_events = [e for e in audit_events(session_factory) if e.action == "asset.cmdb_update"]
    assert [e.details["changes"] for e in update_events] == [
        {
            "criticality": {"from": 2, "to": 1},
            "owner": {"from": "web team", "to": "shop team"},
        },
        {"tags": {"from": ["database"], "to": ["database", "postgres"]}},
    ]
    with session_factory() as session:
        assert verify_chain(session).ok


def test_json_import(session_factory: sessionmaker[Session]) -> None:
    content = json.dumps(
        {
            "assets": [
                {"hostname": "web-01", "tags": ["pci"], "criticality": 1, "internet_facing": True},
                {"serial": "SN-9", "device_type": "network_device", "vendor": "Juniper"},
                {"ip": "2001:DB8::7"},
            ]
        }
    ).encode()
    report = run(session_factory, content, None)  # detected
    assert report.format == "json"
    assert actions(report) == ["created"] * 3
    assert [row.row for row in report.rows] == [1, 2, 3]
    # Without a hostname the asset is named after its serial or IP.
    assert by_hostname(session_factory, "SN-9").serial == "SN-9"
    assert by_hostname(session_factory, "2001:db8::7").ip_addresses == ["2001:db8::7"]
    assert actions(run(session_factory, content, "json")) == ["unchanged"] * 3


def test_rows_of_one_file_see_each_other(session_factory: sessionmaker[Session]) -> None:
    content = HEADER.encode() + (
        b"web-01,,,,,,,,2,,,,,,\nWEB-01,SN-1,,,,,,,2,,,,,,\nweb-01,,,,,,,,3,,,,,,\n"
    )
    report = run(session_factory, content)
    assert actions(report) == ["created", "updated", "updated"]
    assert len({row.asset_id for row in report.rows}) == 1
    assert report.rows[1].changed_fields == ("serial",)
    asset = by_hostname(session_factory, "web-01")
    assert (asset.serial, asset.criticality) == ("SN-1", 3)


# ---------------------------------------------------------------------------
# Matching


def test_matches_by_hostname_then_serial_then_ip(session_factory: sessionmaker[Session]) -> None:
    by_name = add_asset(session_factory, "Web-01.Example", source="cmdb")
    by_serial = add_asset(session_factory, "box", serial="abc-123", source="cmdb")
    by_ip = add_asset(session_factory, "other", ip_addresses=["192.0.2.1", "10.0.0.5"])
    content = HEADER.encode() + (
        b"web-01.example,,,,,,,,1,,,,,,\n"
        b",ABC-123,,,,,,,1,,,,,,\n"
        b",,10.0.0.5,,,,,,1,,,,,,\n"
        b"box,ABC-123,,,,,,,2,,,,,,\n"
    )
    report = run(session_factory, content)
    assert [(row.action, row.asset_id) for row in report.rows] == [
        ("updated", by_name), ("updated", by_serial), ("updated", by_ip), ("updated", by_serial),
    ]  # fmt: skip
    with session_factory() as session:
        assert session.execute(select(func.count()).select_from(Asset)).scalar_one() == 3


def test_ambiguous_rows_are_rejected(session_factory: sessionmaker[Session]) -> None:
    first = add_asset(session_factory, "web-01", serial="SN-1", ip_addresses=["10.0.0.1"])
    second = add_asset(session_factory, "web-02", serial="SN-2", ip_addresses=["10.0.0.2"])
    add_asset(session_factory, "twin", source="cmdb")
    add_asset(session_factory, "TWIN", source="cmdb")
    before = dump_assets(session_factory)
    content = HEADER.encode() + (
        b"web-01,SN-2,,,,,,,1,,,,,,\n"
        b",SN-1,10.0.0.2,,,,,,1,,,,,,\n"
        b"twin,,,,,,,,1,,,,,,\n"
        b"web-01,SN-1,10.0.0.1,,,,,,3,,,,,,\n"  # all keys agree: unchanged
    )
    report = run(session_factory, content)
    assert actions(report) == ["rejected", "rejected", "rejected", "unchanged"]
    assert report.rows[0].reason == (
        f"ambiguous: hostname matches asset {first}, serial matches asset {second}"
    )
    assert report.rows[1].reason == (
        f"ambiguous: serial matches asset {first}, ip matches asset {second}"
    )
    assert report.rows[2].reason is not None
    assert report.rows[2].reason.startswith("ambiguous: hostname matches assets ")
    assert report.rows[0].asset_id is None
    assert report.has_rejections
    assert dump_assets(session_factory) == before


def test_ip_shared_by_the_hostname_match_is_not_ambiguous(
    session_factory: sessionmaker[Session],
) -> None:
    web = add_asset(session_factory, "web-01", ip_addresses=["10.0.0.1"])
    add_asset(session_factory, "web-02", ip_addresses=["10.0.0.1"])
    report = run(session_factory, HEADER.encode() + b"web-01,,10.0.0.1,,,,,,1,,,,,,\n")
    assert [(row.action, row.asset_id) for row in report.rows] == [("updated", web)]


# ---------------------------------------------------------------------------
# What an update may touch


def test_update_never_overwrites_what_agents_report(
    session_factory: sessionmaker[Session],
) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    asset_id = add_asset(
        session_factory, "app-01", source="agent", os_id="debian", os_version_id="12",
        kernel="6.1.0", ip_addresses=["10.0.0.7"], vendor="QEMU", model=None, fqdn=None,
        package_count=1, last_seen_at=now, updated_at=now,
    )  # fmt: skip
    with transaction(session_factory) as session:
        session.add(
            InstalledPackage(
                asset_id=asset_id, ecosystem="deb", name="openssl", version="3.0.11",
                installed_at=now,
            )
        )  # fmt: skip
    content = (
        b"hostname,ip,os,os_version,vendor,model,fqdn,serial,device_type,criticality,tags\n"
        b"APP-01,10.9.9.9,centos,7,Dell,R740,app-01.example.com,SN-7,vm,1,crown-jewels\n"
    )
    report = run(session_factory, content)
    assert actions(report) == ["updated"]
    assert report.rows[0].changed_fields == (
        "criticality", "device_type", "fqdn", "model", "serial", "tags",
    )  # fmt: skip
    asset = by_hostname(session_factory, "app-01")
    # Reported by the agent: kept.
    assert (asset.os_id, asset.os_version_id, asset.kernel, asset.vendor) == (
        "debian", "12", "6.1.0", "QEMU",
    )  # fmt: skip
    assert asset.ip_addresses == ["10.0.0.7"]
    assert asset.hostname == "app-01"
    assert (asset.package_count, asset.last_seen_at, asset.source) == (1, now, "agent")
    # Empty on the agent side: filled in. Owned by the CMDB: set.
    assert (asset.model, asset.fqdn, asset.serial) == ("R740", "app-01.example.com", "SN-7")
    assert (asset.device_type, asset.criticality, asset.tags) == ("vm", 1, ["crown-jewels"])
    assert asset.updated_at > now
    with session_factory() as session:
        packages = session.execute(select(InstalledPackage.name)).scalars().all()
    assert packages == ["openssl"]


def test_cmdb_assets_follow_the_cmdb(session_factory: sessionmaker[Session]) -> None:
    run(session_factory, CSV)
    content = CSV.replace(
        b"web-01,SN-1,10.0.0.1,,Dell,R650,debian,12,", b"web-01,SN-1,10.0.0.9,,HPE,DL380,rhel,9.4,"
    )
    report = run(session_factory, content)
    assert report.rows[0].changed_fields == (
        "ip_addresses", "model", "os_id", "os_version_id", "vendor",
    )  # fmt: skip
    web = by_hostname(session_factory, "web-01")
    assert (web.ip_addresses, web.vendor, web.os_id, web.os_version_id) == (
        ["10.0.0.9"], "HPE", "rhel", "9.4",
    )  # fmt: skip


# ---------------------------------------------------------------------------
# Rejections, dry runs, whole-file errors


BAD_ROWS = HEADER.encode() + (
    b"bad-tz,,,,,,,,,,,Mars/Olympus,,,\n"
    b"bad-crit,,,,,,,,7,,,,,,\n"
    b"bad-ip,,10.0.0.300,,,,,,,,,,,,\n"
    b"short,row\n"
    b",,,,,,,,1,prod,,,,,\n"
    b"web-01,,,,,,,,,,,,,maybe,\n"
)


def test_rejected_rows_leave_the_database_exactly_as_before(
    session_factory: sessionmaker[Session],
) -> None:
    run(session_factory, CSV)
    before = dump_assets(session_factory)
    events_before = len(audit_events(session_factory))
    report = run(session_factory, BAD_ROWS)
    assert actions(report) == ["rejected"] * 6
    assert [(row.row, row.identity) for row in report.rows] == [
        (2, "hostname=bad-tz"), (3, "hostname=bad-crit"), (4, "hostname=bad-ip, ip=10.0.0.300"),
        (5, "hostname=short, serial=row"), (6, ""), (7, "hostname=web-01"),
    ]  # fmt: skip
    reasons = [row.reason or "" for row in report.rows]
    assert "timezone: unknown IANA time zone 'Mars/Olympus'" in reasons[0]
    assert "criticality: Input should be less than or equal to 4" in reasons[1]
    assert "ip: '10.0.0.300' is not an IPv4 or IPv6 address" in reasons[2]
    assert reasons[3] == "line 5: expected 15 fields (as in the header), found 2"
    assert "no identity" in reasons[4]
    assert "internet_facing: expected true/false/yes/no/1/0, found 'maybe'" in reasons[5]
    assert report.totals == ImportTotals(rejected=6)
    assert dump_assets(session_factory) == before
    events = audit_events(session_factory)
    assert [e.action for e in events[events_before:]] == ["import.cmdb"]
    summary = events[-1].details
    assert summary["rejected"] == 6
    assert [r["row"] for r in summary["rejected_rows"]] == [2, 3, 4, 5, 6, 7]


def test_good_rows_apply_around_bad_ones(session_factory: sessionmaker[Session]) -> None:
    lines = CSV.decode().splitlines(keepends=True)
    bad = BAD_ROWS.decode().splitlines(keepends=True)[1:]
    mixed = "".join([lines[0], bad[0], lines[1], bad[3], lines[2], bad[1], lines[3]]).encode()
    report = run(session_factory, mixed)
    assert actions(report) == [
        "rejected", "created", "rejected", "created", "rejected", "created",
    ]  # fmt: skip
    assert [row.row for row in report.rows] == [2, 3, 4, 5, 6, 7]
    with session_factory() as session:
        hostnames = session.execute(select(Asset.hostname).order_by(Asset.id)).scalars().all()
    assert hostnames == ["web-01", "sw-01", "db-01"]


def test_unknown_columns_are_a_warning(session_factory: sessionmaker[Session]) -> None:
    report = run(session_factory, b"hostname,rack,colour\nweb-01,r1,red\n")
    assert actions(report) == ["created"]
    assert len(report.warnings) == 1
    assert report.warnings[0].startswith("ignored unknown columns: rack, colour")
    assert audit_events(session_factory)[-1].details["warnings"] == list(report.warnings)


def test_dry_run_reports_the_same_and_writes_nothing(
    session_factory: sessionmaker[Session],
) -> None:
    add_asset(session_factory, "web-01", source="cmdb", criticality=3)
    switch = add_asset(session_factory, "sw-01", source="cmdb")
    twin = add_asset(session_factory, "twin", serial="SN-2", source="cmdb")
    content = CSV + BAD_ROWS.split(b"\n", 1)[1]
    before = dump_assets(session_factory)
    events_before = len(audit_events(session_factory))

    dry = run(session_factory, content, dry_run=True)
    assert dry.dry_run
    assert dump_assets(session_factory) == before
    assert len(audit_events(session_factory)) == events_before

    real = run(session_factory, content)
    assert not real.dry_run
    assert actions(dry) == actions(real) == ["updated", "rejected", "created"] + ["rejected"] * 6
    assert dry.totals == real.totals == ImportTotals(created=1, updated=1, rejected=7)
    assert real.rows[1].reason == (
        f"ambiguous: hostname matches asset {switch}, serial matches asset {twin}"
    )
    assert dry.rows[2].asset_id is None  # not created in a dry run
    assert real.rows[2].asset_id is not None
    assert dry.rows[0].asset_id == real.rows[0].asset_id
    without_ids = [dataclasses.replace(row, asset_id=None) for row in real.rows]
    assert [dataclasses.replace(row, asset_id=None) for row in dry.rows] == without_ids
    assert dry.warnings == real.warnings


@pytest.mark.parametrize(
    ("content", "fmt", "message"),
    [
        (b"{not json", "json", "not a valid JSON file"),
        (b"[1, 2", None, "not a valid JSON file"),
        (b'{"items": []}', "json", 'a JSON CMDB file is a list of asset objects or {"assets"'),
        (b"owner\nme\n", "csv", "the CSV header has no identity column"),
        (b"\xff\xfe\x00h", None, "not UTF-8 text"),
        (b'hostname\n"web', "csv", "not a valid CSV file"),
    ],
)
def test_unreadable_files_change_nothing(
    session_factory: sessionmaker[Session], content: bytes, fmt: str | None, message: str
) -> None:
    run(session_factory, CSV)
    before = dump_assets(session_factory)
    events_before = len(audit_events(session_factory))
    with pytest.raises(InvalidInput, match=message.replace("{", r"\{")):
        run(session_factory, content, fmt)
    assert dump_assets(session_factory) == before
    assert len(audit_events(session_factory)) == events_before


def test_row_results_are_frozen() -> None:
    row = RowResult(1, "created", "hostname=a", 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.action = "updated"  # type: ignore[misc]


def test_asset_changed_since_the_index_was_read(
    session_factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Matches come from a snapshot; the stored asset is checked again before a change."""
    asset_id = add_asset(session_factory, "web-01", source="cmdb")
    load = cmdb_import._AssetIndex.load

    def load_then_rename(session: Session) -> Any:
        index = load(session)
        session.execute(update(Asset).where(Asset.id == asset_id).values(hostname="renamed"))
        return index

    monkeypatch.setattr(cmdb_import._AssetIndex, "load", staticmethod(load_then_rename))
    report = run(session_factory, b"hostname,criticality\nweb-01,1\n")
    assert [(r.action, r.reason) for r in report.rows] == [
        ("rejected", f"asset {asset_id} changed during the import; import the file again")
    ]
    assert by_hostname(session_factory, "renamed").criticality == 3
