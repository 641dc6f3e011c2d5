"""Reading CMDB exports (pure): CSV and JSON into validated records or rejected rows."""

from __future__ import annotations

import json
import re

import pytest

from patchwarden.errors import InvalidInput
from patchwarden.imports.cmdb import (
    CmdbRecord,
    RejectedRow,
    detect_format,
    read_cmdb,
    validate_row,
)

CSV = b"""\
Hostname,Serial Number,IP Address,device_type,vendor,model,firmware_version,os,os_version,fqdn,criticality,environment,owner,business_service,region,timezone,tags,internet_facing,data_sensitivity
web-01,SN-1,10.0.0.1,server,Dell Inc.,R650,2.1.0,Debian,12,web-01.example.com,2,prod,Web team,Shop,eu-west,Europe/Berlin,PCI; web ;,yes,confidential
,SN-2,,network_device,Cisco,C9300,17.9,,,,1,,,,,,,0,
,,2001:DB8::1,,,,,,,,,,,,,,,,
"""


def records(content: bytes, fmt: str | None = None) -> list[CmdbRecord | RejectedRow]:
    return list(read_cmdb(content, fmt).rows)  # type: ignore[arg-type]


def test_csv_full_example() -> None:
    parsed = read_cmdb(CSV)
    assert parsed.format == "csv"
    assert parsed.warnings == ()
    web, switch, ipv6 = parsed.rows
    assert web == CmdbRecord(
        row=2,
        hostname="web-01",
        serial="SN-1",
        ip="10.0.0.1",
        fqdn="web-01.example.com",
        device_type="server",
        vendor="Dell Inc.",
        model="R650",
        firmware_version="2.1.0",
        os="debian",
        os_version="12",
        criticality=2,
        environment="prod",
        owner="Web team",
        business_service="Shop",
        region="eu-west",
        timezone="Europe/Berlin",
        tags=("pci", "web"),
        internet_facing=True,
        data_sensitivity="confidential",
    )
    assert web.identity == "hostname=web-01, serial=SN-1, ip=10.0.0.1"
    # Empty cells are "not given" (None), never "clear".
    assert switch == CmdbRecord(
        row=3,
        serial="SN-2",
        device_type="network_device",
        vendor="Cisco",
        model="C9300",
        firmware_version="17.9",
        criticality=1,
        internet_facing=False,
    )
    assert ipv6 == CmdbRecord(row=4, ip="2001:db8::1")
    assert ipv6.identity == "ip=2001:db8::1"


def test_csv_line_numbers_count_blank_lines_and_multiline_cells() -> None:
    content = b'hostname,owner\n\na,"Jane\nDoe"\n\nb,x,extra\nc,z\n'
    rows = records(content)
    assert [row.row for row in rows] == [3, 6, 7]
    assert isinstance(rows[0], CmdbRecord)
    assert rows[1] == RejectedRow(
        6, "hostname=b", "line 6: expected 2 fields (as in the header), found 3"
    )
    assert isinstance(rows[2], CmdbRecord)


def test_csv_rows_with_too_few_fields_are_rejected() -> None:
    rows = records(b"hostname,ip,owner\nweb-01,10.0.0.1\nweb-02,10.0.0.2,me\n")
    assert rows[0] == RejectedRow(
        2, "hostname=web-01, ip=10.0.0.1", "line 2: expected 3 fields (as in the header), found 2"
    )
    assert isinstance(rows[1], CmdbRecord)


def test_unknown_columns_warn_once_and_are_ignored() -> None:
    parsed = read_cmdb(b"hostname,Colour,rack\na,red,1\nb,blue,2\n")
    assert len(parsed.warnings) == 1
    assert parsed.warnings[0].startswith("ignored unknown columns: colour, rack (known columns: ")
    assert [row.hostname for row in parsed.rows if isinstance(row, CmdbRecord)] == ["a", "b"]


def test_bom_and_crlf() -> None:
    rows = records(b"\xef\xbb\xbfhostname,tags\r\nweb-01,a;b\r\n")
    assert rows == [CmdbRecord(row=2, hostname="web-01", tags=("a", "b"))]


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("true", True), ("TRUE", True), ("yes", True), ("Yes", True), ("1", True),
        ("false", False), ("no", False), ("NO", False), ("0", False), ("", None),
    ],
)  # fmt: skip
def test_csv_booleans(cell: str, expected: bool | None) -> None:
    rows = records(f"hostname,internet_facing\nh,{cell}\n".encode())
    assert rows == [CmdbRecord(row=2, hostname="h", internet_facing=expected)]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the CSV file is empty: expected a header row"),
        (b"\n\n", "the CSV file is empty"),
        (b"owner,region\nme,eu\n", "the CSV header has no identity column"),
        (b"hostname,Host Name\na,b\n", "the CSV header names column 'hostname' twice"),
        (b"hostname,,owner\na,b,c\n", "empty column name (column 2)"),
        (b"hostname\n\xff\xfe\n", "the file is not UTF-8 text (bad byte at offset 9)"),
        (b"hostname\nweb\x00\n", "contains NUL bytes"),
        (b'hostname,ip\nweb1,"10"x\n', "not a valid CSV file: line 2"),
        (b'hostname,ip\nweb1,"10.0.0.1\nweb2,1\n', "not a valid CSV file: line 3"),
    ],
)
def test_files_that_are_not_csv(content: bytes, message: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(message)):
        read_cmdb(content, "csv")


# ---------------------------------------------------------------------------
# JSON


def test_json_list_and_wrapped_object_read_the_same() -> None:
    assets = [
        {"hostname": "web-01", "tags": ["B", "a"], "internet_facing": True, "criticality": 1},
        {"serial": 12345, "tags": "x;y", "internet_facing": "no", "criticality": "4"},
        {"ip_address": "10.1.2.3", "Serial Number": None, "owner": "  "},
    ]
    as_list = read_cmdb(json.dumps(assets).encode())
    wrapped = read_cmdb(json.dumps({"assets": assets}).encode(), "json")
    assert as_list == wrapped
    assert as_list.format == "json"
    assert list(as_list.rows) == [
        CmdbRecord(row=1, hostname="web-01", tags=("a", "b"), internet_facing=True, criticality=1),
        CmdbRecord(row=2, serial="12345", tags=("x", "y"), internet_facing=False, criticality=4),
        CmdbRecord(row=3, ip="10.1.2.3"),
    ]


def test_json_rows_are_checked_one_by_one() -> None:
    content = json.dumps(
        [
            "web-01",
            {"hostname": {"nested": True}},
            {"hostname": "a", "host_name": "b"},
            {"hostname": "ok", "colour": "red", "Rack": 3},
            {"hostname": "ok2", "colour": "blue"},
            {"hostname": "bad", "tags": [1, 2]},
            {"hostname": "bad2", "criticality": 2.5},
        ]
    ).encode()
    parsed = read_cmdb(content)
    rows = list(parsed.rows)
    assert rows[0] == RejectedRow(1, "", "expected an object, found a string")
    assert rows[1] == RejectedRow(
        2, 'hostname={"nested": true}', "hostname: expected text, found an object"
    )
    assert rows[2] == RejectedRow(3, "", "field 'hostname' is given twice (as 'host_name')")
    assert rows[3] == CmdbRecord(row=4, hostname="ok")
    assert rows[4] == CmdbRecord(row=5, hostname="ok2")
    assert rows[5] == RejectedRow(
        6, "hostname=bad", "tags: expected ';'-separated text or a list of strings"
    )
    assert isinstance(rows[6], RejectedRow)
    assert "criticality: expected a whole number" in rows[6].reason
    assert len(parsed.warnings) == 1  # for the whole file, naming each unknown column once
    assert parsed.warnings[0].startswith("ignored unknown columns: colour, Rack (known")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"[{]", "not a valid JSON file: Expecting property name enclosed in double quotes at "
                 "line 1, column 3"),
        (b'{"hosts": []}', 'found an object with keys hosts'),
        (b'{"assets": {"a": 1}}', "found an object"),
        (b'"text"', "found a string"),
        (b"[" * 100_000, "not a valid JSON file"),
    ],
)  # fmt: skip
def test_files_that_are_not_json(content: bytes, message: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(message)):
        read_cmdb(content, "json")


def test_unknown_format() -> None:
    with pytest.raises(InvalidInput, match="unknown CMDB format 'xml'; use one of csv, json"):
        read_cmdb(b"<x/>", "xml")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("content", "fmt"),
    [
        (b"[]", "json"),
        (b'  \n {"assets": []}', "json"),
        (b"\xef\xbb\xbf[]", "json"),
        (b"hostname\nweb", "csv"),
        (b"", "csv"),
    ],
)
def test_detect_format(content: bytes, fmt: str) -> None:
    assert detect_format(content) == fmt


# ---------------------------------------------------------------------------
# Row validation


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({}, "no identity: give at least one of hostname, serial, ip"),
        ({"owner": "me"}, "no identity"),
        ({"hostname": "  "}, "no identity"),
        ({"ip": "10.0.0.256"}, "ip: '10.0.0.256' is not an IPv4 or IPv6 address"),
        ({"ip": "10.0.0.0/8"}, "is not an IPv4 or IPv6 address"),
        ({"ip": "web-01"}, "is not an IPv4 or IPv6 address"),
        ({"hostname": "web 01"}, "hostname: 'web 01' is not a host name"),
        ({"hostname": "-web"}, "is not a host name"),
        ({"hostname": "w" * 256}, "hostname: longer than 255 characters"),
        ({"hostname": "a", "fqdn": "a b.example"}, "fqdn: 'a b.example' is not a host name"),
        ({"hostname": "a", "serial": "s" * 129}, "serial: longer than 128 characters"),
        ({"hostname": "a", "os": "o" * 65}, "os: longer than 64 characters"),
        ({"hostname": "a", "owner": "o" * 129}, "owner: String should have at most 128"),
        ({"hostname": "a", "vendor": "Acme\tInc"}, "vendor: contains control characters"),
        ({"hostname": "a", "timezone": "Mars/Olympus"}, "timezone: unknown IANA time zone"),
        ({"hostname": "a", "timezone": "CEST"}, "timezone: unknown IANA time zone 'CEST'"),
        ({"hostname": "a", "criticality": "0"}, "criticality: Input should be greater than"),
        ({"hostname": "a", "criticality": "5"}, "criticality: Input should be less than"),
        ({"hostname": "a", "criticality": "high"}, "criticality: expected a whole number"),
        ({"hostname": "a", "criticality": True}, "criticality: expected a whole number"),
        ({"hostname": "a", "internet_facing": "maybe"}, "internet_facing: expected true/false"),
        ({"hostname": "a", "internet_facing": 2}, "internet_facing: expected true/false"),
        ({"hostname": "a", "data_sensitivity": "secret"}, "data_sensitivity: Input should be"),
        ({"hostname": "a", "device_type": "toaster"}, "device_type: must be one of server"),
        ({"hostname": "a", "tags": "ok;Not OK"}, "tags: tag 'Not OK' must be 1-63 characters"),
        ({"hostname": "a", "environment": ["prod"]}, "environment: expected text, found a list"),
    ],
)
def test_invalid_rows(values: dict[str, object], reason: str) -> None:
    result = validate_row(7, values)  # type: ignore[arg-type]
    assert isinstance(result, RejectedRow)
    assert result.row == 7
    assert reason in result.reason


def test_every_problem_in_a_row_is_reported() -> None:
    result = validate_row(
        2,
        {
            "hostname": "web!",
            "ip": "1.2.3",
            "criticality": "9",
            "timezone": "Nowhere/Town",
            "internet_facing": "perhaps",
        },
    )
    assert isinstance(result, RejectedRow)
    assert result.identity == "hostname=web!, ip=1.2.3"
    assert [problem.split(":")[0] for problem in result.reason.split("; ")] == [
        "hostname", "ip", "internet_facing", "criticality", "timezone",
    ]  # fmt: skip


def test_values_are_normalised() -> None:
    result = validate_row(
        1,
        {
            "hostname": " Web-01 ",
            "ip": "::FFFF:10.0.0.1",
            "os": "Ubuntu",
            "device_type": "VM",
            "data_sensitivity": "Restricted",
            "tags": ["b", "A", "a"],
            "criticality": 3.0,
            "timezone": "UTC",
        },
    )
    assert result == CmdbRecord(
        row=1,
        hostname="Web-01",
        ip="::ffff:a00:1",
        os="ubuntu",
        device_type="vm",
        data_sensitivity="restricted",
        tags=("a", "b"),
        criticality=3,
        timezone="UTC",
    )
