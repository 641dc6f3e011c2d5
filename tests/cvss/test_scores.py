"""CVSS scoring against the official scores of 7,622 vectors, and error handling."""

from __future__ import annotations

from pathlib import Path

import cvss as cvss_library  # type: ignore[import-untyped]  # the library, not our package
import pytest

from patchwarden.cvss import (
    CvssScore,
    CvssVersion,
    InvalidCvssVector,
    Severity,
    parse,
    score,
    severity_for,
)
from patchwarden.errors import InvalidInput

VECTORS = (
    Path(__file__).resolve().parents[2]
    / ".."
    / "shared"
    / "data"
    / "cvss"
    / "cvss_vectors_scores.tsv"
)


def _rows() -> list[dict[str, str]]:
    if not VECTORS.is_file():
        pytest.skip(f"shared test data not found: {VECTORS.resolve()}")
    lines = VECTORS.read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"), strict=True)) for line in lines[1:] if line]


def _mismatches(row: dict[str, str]) -> list[str]:
    result = score(row["vector"])
    problems = []
    if result.version != row["cvss_version"]:
        problems.append(f"version {result.version}")
    if result.base_score != float(row["score"]):
        problems.append(f"score {result.base_score}")
    if row["temporal_score"] and result.temporal_score != float(row["temporal_score"]):
        problems.append(f"temporal {result.temporal_score}")
    if row["environmental_score"] and result.environmental_score != float(
        row["environmental_score"]
    ):
        problems.append(f"environmental {result.environmental_score}")
    # Absent in the file means the vector has no such metrics (v2) or v4's single score.
    if not row["temporal_score"] and result.temporal_score is not None:
        problems.append(f"unexpected temporal {result.temporal_score}")
    if not row["environmental_score"] and result.environmental_score is not None:
        problems.append(f"unexpected environmental {result.environmental_score}")
    # Our bands are written from the specifications; the library's must agree.
    library = {"2.0": cvss_library.CVSS2, "4.0": cvss_library.CVSS4}.get(
        row["cvss_version"], cvss_library.CVSS3
    )
    text = (
        row["vector"] if row["cvss_version"] != "2.0" else row["vector"].removeprefix("CVSS:2.0/")
    )
    if result.severity != library(text).severities()[0]:
        problems.append(f"severity {result.severity}")
    return problems


def test_all_official_scores() -> None:
    rows = _rows()
    assert len(rows) == 7622
    bad = [(row["vector"], p) for row in rows if (p := _mismatches(row))]
    assert bad == [], f"{len(bad)} of {len(rows)} vectors disagree; first: {bad[:5]}"


def test_counts_per_version() -> None:
    counts: dict[str, int] = {}
    for row in _rows():
        counts[row["cvss_version"]] = counts.get(row["cvss_version"], 0) + 1
    assert counts == {"2.0": 736, "3.0": 2600, "3.1": 2592, "4.0": 1694}


def test_normalised_vector_scores_the_same() -> None:
    for row in _rows()[::50]:
        first = score(row["vector"])
        again = score(first.vector)
        assert again == first
        assert parse(row["vector"]).vector == first.vector


@pytest.mark.parametrize(
    ("text", "version", "normalised"),
    [
        ("AV:N/AC:L/Au:N/C:P/I:P/A:P", CvssVersion.V2, "AV:N/AC:L/Au:N/C:P/I:P/A:P"),
        ("(AV:N/AC:L/Au:N/C:P/I:P/A:P)", CvssVersion.V2, "AV:N/AC:L/Au:N/C:P/I:P/A:P"),
        ("CVSS:2.0/AV:N/AC:L/Au:N/C:P/I:P/A:P", CvssVersion.V2, "AV:N/AC:L/Au:N/C:P/I:P/A:P"),
        ("A:P/AV:N/AC:L/Au:N/C:P/I:P/E:ND", CvssVersion.V2, "AV:N/AC:L/Au:N/C:P/I:P/A:P"),
        (
            " CVSS:3.0/S:U/AV:N/AC:L/PR:N/UI:N/C:H/I:H/A:H/E:X ",
            CvssVersion.V3_0,
            "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        ),
        (
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
            CvssVersion.V3_1,
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        ),
        (
            "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
            CvssVersion.V4,
            "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
        ),
    ],
)
def test_version_detection_and_normalisation(
    text: str, version: CvssVersion, normalised: str
) -> None:
    parsed = parse(text)
    assert parsed.version is version
    assert parsed.vector == normalised
    assert next(iter(parsed.metrics)) == "AV"


def test_known_scores() -> None:
    log4shell = score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H")
    assert (log4shell.base_score, log4shell.severity) == (10.0, Severity.CRITICAL)
    assert not log4shell.has_temporal_metrics
    v2 = score("AV:N/AC:L/Au:N/C:C/I:C/A:C/E:F/RL:OF/RC:C")
    assert (v2.base_score, v2.temporal_score, v2.environmental_score) == (10.0, 8.3, None)
    assert v2.severity is Severity.HIGH
    assert v2.has_temporal_metrics


def test_v4_has_one_score_and_a_nomenclature() -> None:
    base = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"
    assert score(base).nomenclature == "CVSS-B"
    assert score(base + "/E:U").nomenclature == "CVSS-BT"
    assert score(base + "/CR:H").nomenclature == "CVSS-BE"
    threat_env = score(base + "/E:U/MAV:L")
    assert threat_env.nomenclature == "CVSS-BTE"
    assert threat_env.temporal_score is None
    assert threat_env.environmental_score is None
    assert score(base).severity is Severity.CRITICAL
    assert score(base + "/E:U").base_score < score(base).base_score


def test_v3_temporal_and_environmental_are_always_computed() -> None:
    # v3.1 scope-changed base-only vector: environmental differs from base (spec).
    result = score("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:H/I:H/A:H")
    assert (result.base_score, result.temporal_score, result.environmental_score) == (
        9.6,
        9.6,
        9.7,
    )
    assert not result.has_environmental_metrics


@pytest.mark.parametrize(
    ("version", "score_value", "band"),
    [
        (CvssVersion.V2, 0.0, Severity.LOW),
        (CvssVersion.V2, 3.9, Severity.LOW),
        (CvssVersion.V2, 4.0, Severity.MEDIUM),
        (CvssVersion.V2, 6.9, Severity.MEDIUM),
        (CvssVersion.V2, 7.0, Severity.HIGH),
        (CvssVersion.V2, 10.0, Severity.HIGH),
        (CvssVersion.V3_1, 0.0, Severity.NONE),
        (CvssVersion.V3_1, 0.1, Severity.LOW),
        (CvssVersion.V3_0, 3.9, Severity.LOW),
        (CvssVersion.V3_1, 4.0, Severity.MEDIUM),
        (CvssVersion.V3_1, 6.9, Severity.MEDIUM),
        (CvssVersion.V3_1, 7.0, Severity.HIGH),
        (CvssVersion.V4, 8.9, Severity.HIGH),
        (CvssVersion.V4, 9.0, Severity.CRITICAL),
        (CvssVersion.V4, 10.0, Severity.CRITICAL),
    ],
)
def test_severity_bands(version: CvssVersion, score_value: float, band: Severity) -> None:
    assert severity_for(version, score_value) is band


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "vector is empty"),
        ("   ", "vector is empty"),
        ("CVSS:3.2/AV:N/AC:L", "unsupported CVSS version '3.2' (supported: 2.0, 3.0, 3.1, 4.0)"),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H", 'Missing mandatory metrics "A"'),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:Q", 'Unknown value "Q" in field "A:Q"'),
        ("CVSS:3.1/AV:N/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 'Duplicate metric "AV"'),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/", 'trailing "/"'),
        ("AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "looks like CVSS v3 but lacks the 'CVSS:3.x/'"),
        ("AV:N/AC:L/AT:N/PR:N/UI:N/VC:H", "looks like CVSS v4.0 but lacks the 'CVSS:4.0/'"),
        ("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N", 'mandatory metrics "SA"'),
        (
            "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/E:Q",
            "Invalid metric value",
        ),
        ("AV:N/AC:L/Au:N/C:P/I:P", 'Missing mandatory metrics "A"'),
        ("not a vector", "Malformed CVSS2 field"),
        ("CVSS:3.1/" + "AV:N/" * 200, "longer than 512 characters"),
    ],
)
def test_bad_vectors_give_clear_errors(text: str, reason: str) -> None:
    with pytest.raises(InvalidCvssVector) as caught:
        score(text)
    assert reason in str(caught.value)
    assert str(caught.value).startswith("invalid CVSS vector ")
    assert isinstance(caught.value, InvalidInput)
    with pytest.raises(InvalidCvssVector):
        parse(text)


def test_score_is_a_frozen_hashable_value() -> None:
    result = score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H")
    assert isinstance(result, CvssScore)
    with pytest.raises(AttributeError):
        result.base_score = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        result.metrics["AV"] = "L"  # type: ignore[index]
    assert hash(result) == hash(score(result.vector))
    assert result.to_dict()["metrics"] == dict(result.metrics)
