"""EPSS CSV, plain and gzip, with broken lines."""

from __future__ import annotations

import gzip
from datetime import date
from pathlib import Path

from patchwarden.domain.advisories import EpssScore
from patchwarden.feeds import detect_format, read_path
from tests.feeds.conftest import Parse

HEADER = "#model_version:v2025.03.14,score_date:2025-08-01T00:00:00+0000\ncve,epss,percentile\n"


def test_scores_and_broken_lines(parse_text: Parse) -> None:
    text = HEADER + (
        "CVE-1999-0001,0.01141,0.77757\n"
        "CVE-1999-0002,0.1,\n"  # 3: empty percentile
        "CVE-99-1,0.1,0.2\n"  # 4: not a CVE id
        "CVE-2024-0001,1.5,0.2\n"  # 5: out of range
        "CVE-2024-0002,nan,0.2\n"  # 6: NaN
        "CVE-2024-0003,0.2\n"  # 7: a column short
        "\n"
        "CVE-2024-0004,0,1\n"
        "CVE-1999-0001,0.5,0.5\n"  # 10: listed again
    )
    parsed = parse_text("epss", text, name="epss.csv")
    assert parsed.records == (
        EpssScore("CVE-1999-0001", 0.01141, 0.77757, date(2025, 8, 1), "v2025.03.14"),
        EpssScore("CVE-2024-0004", 0.0, 1.0, date(2025, 8, 1), "v2025.03.14"),
    )
    assert [(r.where, r.reason) for r in parsed.rejected] == [
        ("epss.csv:4 CVE-1999-0002", "percentile '' is not a number"),
        ("epss.csv:5", "'CVE-99-1' is not a CVE id (CVE-YYYY-NNNN)"),
        ("epss.csv:6 CVE-2024-0001", "epss '1.5' is not between 0 and 1"),
        ("epss.csv:7 CVE-2024-0002", "epss 'nan' is not between 0 and 1"),
        ("epss.csv:8", "expected 3 comma-separated values, found 2"),
        ("epss.csv:11 CVE-1999-0001", "listed again; the first row is kept"),
    ]
    assert parsed.notes == ("EPSS model v2025.03.14, scores of 2025-08-01",)


def test_gzip_file_is_detected_and_read(tmp_path: Path) -> None:
    rows = "".join(f"CVE-2024-{i:05},0.{i:05},0.5\n" for i in range(1, 1001))
    path = tmp_path / "epss_scores-2025-08-01.csv.gz"
    path.write_bytes(gzip.compress((HEADER + rows).encode()))
    assert detect_format(path) == "epss"
    (parsed,) = read_path(path)
    assert len(parsed.records) == 1000
    assert parsed.rejected == ()


def test_without_comment_line_and_without_header(parse_text: Parse) -> None:
    parsed = parse_text("epss", "cve,epss,percentile\nCVE-2024-0001,0.1,0.2\n")
    assert parsed.records == (EpssScore("CVE-2024-0001", 0.1, 0.2),)
    assert parsed.notes == ("EPSS file without a model/score-date line: scores have no date",)
    parsed = parse_text("epss", "CVE-2024-0001,0.1,0.2\n", name="x.csv")
    assert [(r.where, r.reason) for r in parsed.rejected] == [
        (
            "x.csv",
            "not an EPSS file: line 1 should be the header 'cve,epss,percentile', "
            "not 'CVE-2024-0001,0.1,0.2'",
        )
    ]


def test_gzip_cut_mid_stream_is_rejected_whole(tmp_path: Path) -> None:
    """The rows before the cut are not kept: stored, they would mix two days' scores."""
    rows = "".join(f"CVE-2024-{i:05},0.{i:05},0.5\n" for i in range(1, 100_000))
    data = gzip.compress((HEADER + rows).encode())
    path = tmp_path / "epss.csv.gz"
    path.write_bytes(data[: len(data) // 2])
    (parsed,) = read_path(path)
    assert parsed.records == ()
    (rejection,) = parsed.rejected
    assert rejection.where == str(path)
    assert rejection.reason.startswith("the compressed data ends early (truncated download?)")
    assert rejection.reason.endswith("a file that cannot be read to its end is not imported")


def test_a_broken_line_is_still_rejected_alone(parse_text: Parse) -> None:
    parsed = parse_text("epss", HEADER + "CVE-2024-0001,0.1,0.2\nCVE-2024-0002,x,0.2\n", name="e")
    assert [r.cve_id for r in parsed.records if isinstance(r, EpssScore)] == ["CVE-2024-0001"]
    assert [r.where for r in parsed.rejected] == ["e:4 CVE-2024-0002"]
