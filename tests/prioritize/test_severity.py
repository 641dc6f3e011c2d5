"""Severity levels from feed text and from CVSS base scores."""

from __future__ import annotations

import pytest

from patchwarden.cvss import CvssVersion
from patchwarden.prioritize import SEVERITY_LEVELS, normalise_severity, severity_from_cvss


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("critical", "critical"),
        ("CRITICAL", "critical"),
        (" High ", "high"),
        ("Important", "high"),
        ("medium", "medium"),
        ("Moderate", "medium"),
        ("low", "low"),
        ("negligible", "low"),
        ("unimportant", "low"),
        ("None", "none"),
        ("untriaged", None),
        ("", None),
        (None, None),
    ],
)
def test_normalise_severity(text: str | None, level: str | None) -> None:
    assert normalise_severity(text) == level


@pytest.mark.parametrize(
    ("score", "version", "level"),
    [
        (0.0, CvssVersion.V3_1, "none"),
        (0.1, CvssVersion.V3_1, "low"),
        (3.9, CvssVersion.V3_1, "low"),
        (4.0, CvssVersion.V3_1, "medium"),
        (6.9, CvssVersion.V3_1, "medium"),
        (7.0, CvssVersion.V3_1, "high"),
        (8.9, CvssVersion.V3_1, "high"),
        (9.0, CvssVersion.V3_1, "critical"),
        (10.0, CvssVersion.V3_1, "critical"),
        (9.3, "4.0", "critical"),
        (9.8, "3.0", "critical"),
        (0.0, CvssVersion.V2, "low"),  # v2 (NVD bands) has neither none nor critical
        (9.8, "2.0", "high"),
        (None, CvssVersion.V3_1, None),
    ],
)
def test_severity_from_cvss(score: float | None, version: CvssVersion | str, level: str) -> None:
    assert severity_from_cvss(score, version) == level


def test_severity_from_cvss_defaults_to_v3_bands() -> None:
    assert severity_from_cvss(9.8) == "critical"


@pytest.mark.parametrize("score", [-0.1, 10.1, float("nan"), float("inf")])
def test_severity_from_cvss_refuses_scores_out_of_range(score: float) -> None:
    with pytest.raises(ValueError, match=r"between 0\.0 and 10\.0"):
        severity_from_cvss(score)


def test_severity_from_cvss_refuses_unknown_version() -> None:
    with pytest.raises(ValueError, match=r"5\.0"):
        severity_from_cvss(5.0, "5.0")


def test_levels_are_most_severe_first() -> None:
    assert SEVERITY_LEVELS == ("critical", "high", "medium", "low", "none")
