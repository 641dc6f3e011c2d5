"""CVSS values: versions, severity bands, parsed vectors and scores."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from patchwarden.errors import InvalidInput


class CvssVersion(StrEnum):
    V2 = "2.0"
    V3_0 = "3.0"
    V3_1 = "3.1"
    V4 = "4.0"


class Severity(StrEnum):
    NONE = "None"
    LOW = "Low"
    MEDIUM = "Medium"
    HIGH = "High"
    CRITICAL = "Critical"


class InvalidCvssVector(InvalidInput):
    """A CVSS vector string that cannot be parsed or scored."""

    code = "invalid_cvss_vector"

    def __init__(self, vector: str, reason: str) -> None:
        self.vector = vector
        self.reason = reason
        super().__init__(f"invalid CVSS vector {vector!r}: {reason}")


# Metric groups, by the abbreviations of each specification.
TEMPORAL_METRICS: Final[Mapping[CvssVersion, frozenset[str]]] = {
    CvssVersion.V2: frozenset({"E", "RL", "RC"}),
    CvssVersion.V3_0: frozenset({"E", "RL", "RC"}),
    CvssVersion.V3_1: frozenset({"E", "RL", "RC"}),
    CvssVersion.V4: frozenset({"E"}),  # v4 calls it the threat group
}
_V3_ENVIRONMENTAL: Final = frozenset(
    {"CR", "IR", "AR", "MAV", "MAC", "MPR", "MUI", "MS", "MC", "MI", "MA"}
)
ENVIRONMENTAL_METRICS: Final[Mapping[CvssVersion, frozenset[str]]] = {
    CvssVersion.V2: frozenset({"CDP", "TD", "CR", "IR", "AR"}),
    CvssVersion.V3_0: _V3_ENVIRONMENTAL,
    CvssVersion.V3_1: _V3_ENVIRONMENTAL,
    CvssVersion.V4: frozenset(
        {"CR", "IR", "AR", "MAV", "MAC", "MAT", "MPR", "MUI"}
        | {"MVC", "MVI", "MVA", "MSC", "MSI", "MSA"}
    ),
}


def severity_for(version: CvssVersion, score: float) -> Severity:
    """The qualitative band of a score.

    v2 has no official bands; NVD's are Low 0.0-3.9, Medium 4.0-6.9, High 7.0-10.0.
    v3.x and v4.0 define None 0.0, Low 0.1-3.9, Medium 4.0-6.9, High 7.0-8.9,
    Critical 9.0-10.0.
    """
    if version is CvssVersion.V2:
        if score < 4.0:
            return Severity.LOW
        return Severity.MEDIUM if score < 7.0 else Severity.HIGH
    if score == 0.0:
        return Severity.NONE
    if score < 4.0:
        return Severity.LOW
    if score < 7.0:
        return Severity.MEDIUM
    return Severity.HIGH if score < 9.0 else Severity.CRITICAL


@dataclass(frozen=True)
class CvssVector:
    """A parsed vector: its version, its normalised text and the metrics it sets.

    The normalised text has the specification's prefix (none for v2), the
    metrics in the specification's order and no "not defined" (X / ND) values.
    """

    version: CvssVersion
    vector: str
    # Read-only; derived from ``vector``, so left out of the hash.
    metrics: Mapping[str, str] = field(hash=False)

    @property
    def has_temporal_metrics(self) -> bool:
        """Whether the vector sets a temporal (v4: threat) metric."""
        return not TEMPORAL_METRICS[self.version].isdisjoint(self.metrics)

    @property
    def has_environmental_metrics(self) -> bool:
        """Whether the vector sets an environmental metric."""
        return not ENVIRONMENTAL_METRICS[self.version].isdisjoint(self.metrics)


@dataclass(frozen=True)
class CvssScore:
    """The scores of one vector.

    * v2: temporal and environmental scores are ``None`` unless the vector sets
      metrics of that group (as NVD shows them).
    * v3.x: both are always given, because the specification defines them for
      every vector (unset metrics are "Not Defined"); in v3.1 the environmental
      score of a base-only, scope-changed vector can differ from the base score.
      Check ``has_temporal_metrics`` / ``has_environmental_metrics`` before
      preferring them to the base score.
    * v4.0: one score for the whole vector (``base_score``; see ``nomenclature``),
      temporal and environmental are ``None``.

    ``severity`` is the band of ``base_score``.
    """

    version: CvssVersion
    vector: str
    base_score: float
    temporal_score: float | None
    environmental_score: float | None
    severity: Severity
    metrics: Mapping[str, str] = field(hash=False)

    @property
    def has_temporal_metrics(self) -> bool:
        return not TEMPORAL_METRICS[self.version].isdisjoint(self.metrics)

    @property
    def has_environmental_metrics(self) -> bool:
        return not ENVIRONMENTAL_METRICS[self.version].isdisjoint(self.metrics)

    @property
    def nomenclature(self) -> str | None:
        """v4.0 only: CVSS-B, CVSS-BT, CVSS-BE or CVSS-BTE, after the groups set."""
        if self.version is not CvssVersion.V4:
            return None
        threat = "T" if self.has_temporal_metrics else ""
        environmental = "E" if self.has_environmental_metrics else ""
        return f"CVSS-B{threat}{environmental}"

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict of every field."""
        return {
            "version": str(self.version),
            "vector": self.vector,
            "base_score": self.base_score,
            "temporal_score": self.temporal_score,
            "environmental_score": self.environmental_score,
            "severity": str(self.severity),
            "nomenclature": self.nomenclature,
            "metrics": dict(self.metrics),
        }
