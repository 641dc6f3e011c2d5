"""Severity levels shared by the risk score and the SLA policy.

A severity reaches prioritisation either as text from an advisory feed
("Critical", "Important", "moderate" …) or as a CVSS base score. Both are
mapped onto five lower-case levels. The CVSS bands are the ones of
`patchwarden.cvss.severity_for` (v3.x/v4.0: none 0.0, low 0.1-3.9, medium
4.0-6.9, high 7.0-8.9, critical 9.0-10.0; v2 has no critical band).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Final, Literal

from patchwarden.cvss import CvssVersion, severity_for

SeverityLevel = Literal["critical", "high", "medium", "low", "none"]

# Most severe first.
SEVERITY_LEVELS: Final[tuple[SeverityLevel, ...]] = ("critical", "high", "medium", "low", "none")

# Feed vocabularies beyond the five levels: Red Hat ("important", "moderate"),
# GHSA ("moderate"), Ubuntu ("negligible"), Debian ("unimportant").
SEVERITY_ALIASES: Final[dict[str, SeverityLevel]] = {
    "critical": "critical",
    "high": "high",
    "important": "high",
    "medium": "medium",
    "moderate": "medium",
    "low": "low",
    "negligible": "low",
    "unimportant": "low",
    "none": "none",
}


def normalise_severity(text: str | None) -> SeverityLevel | None:
    """The level of a feed's severity text, case-insensitive; None when absent or unknown.

    >>> normalise_severity("Important")
    'high'
    >>> normalise_severity("untriaged") is None
    True
    """
    if text is None:
        return None
    return SEVERITY_ALIASES.get(text.strip().lower())


def most_severe(levels: Iterable[SeverityLevel]) -> SeverityLevel | None:
    """The most severe of some levels; None when there are none."""
    return min(levels, key=SEVERITY_LEVELS.index, default=None)


def severity_from_cvss(
    score: float | None, version: CvssVersion | str = CvssVersion.V3_1
) -> SeverityLevel | None:
    """The level of a CVSS base score in the bands of `version`; None when there is no score.

    >>> severity_from_cvss(9.8)
    'critical'
    >>> severity_from_cvss(9.8, "2.0")
    'high'

    ValueError for a score outside 0..10 or an unknown version.
    """
    if score is None:
        return None
    if not (math.isfinite(score) and 0.0 <= score <= 10.0):
        raise ValueError(f"CVSS base score must be between 0.0 and 10.0, not {score!r}")
    band = severity_for(CvssVersion(version), score)
    return SEVERITY_ALIASES[band.value.lower()]
