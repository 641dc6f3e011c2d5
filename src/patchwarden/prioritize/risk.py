"""The explainable risk score: 0-100 per finding and per patch.

Formula (per finding)::

    threat  = cvss_points × CVSS base score            (0..10)
            + epss_points × EPSS probability           (0..1)
            + kev_points            if listed in CISA KEV
            + ransomware_points     if KEV says "known ransomware use"
    context = criticality factor (tier 1..4)
            × exposure factor (internet-facing or not)
            × data-sensitivity factor (public .. restricted)
    score   = round(min(100, threat × context), 1)

With the default weights the threat part runs 0..120 (CVSS 0-60, EPSS 0-20,
KEV 25, ransomware 10) and the context multiplier 0.392..1.0 (criticality
1.0/0.9/0.8/0.7, internet-facing 1.0 else 0.8, data sensitivity public 0.7,
internal 0.8, confidential 0.9, restricted 1.0). A KEV-listed critical CVE
with a high EPSS on an internet-facing tier-1 asset holding restricted data
therefore scores 100; the same CVE on an internal tier-4 asset with public
data about 40.

Missing inputs: without a CVSS base score the advisory's severity band stands
in for it (critical 9.5, high 8.0, medium 5.5, low 2.0, none 0.0) and with no
usable severity either the middle of the medium band (5.5) is assumed; a
missing EPSS probability counts as 0. Each case is named in the component's
explanation.

Guarantees, for every `RiskWeights` that validates:

* monotonic: raising the CVSS base score, the EPSS probability, the severity
  band used in place of a missing CVSS score, a KEV listing, known ransomware
  use, the asset's criticality (a lower tier number), internet exposure or
  data sensitivity never lowers the score;
* KEV dominance: a KEV-listed finding never scores below a finding that is not
  listed, when both are on assets with the same context and the listed one's
  CVSS is at least as high, whatever the EPSS of either (this is why the KEV
  weight may not be smaller than the EPSS weight). With the default weights
  it scores strictly higher unless both reach 100.

The patch score (`patch_risk`) is the highest score among the findings the
patch closes plus a bonus of `patch_extra_share` (5 %) of the other findings'
scores, capped at `patch_extra_cap` (10 points), and at 100 overall.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Final, Literal

from patchwarden.domain.attributes import DATA_SENSITIVITIES
from patchwarden.errors import InvalidInput
from patchwarden.prioritize.severity import SeverityLevel, normalise_severity

MAX_SCORE: Final = 100.0

# The CVSS base score assumed when only the advisory's severity band is known:
# about the middle of each CVSS v3 band.
SEVERITY_DEFAULT_CVSS: Final[Mapping[SeverityLevel, float]] = {
    "critical": 9.5,
    "high": 8.0,
    "medium": 5.5,
    "low": 2.0,
    "none": 0.0,
}
# Neither CVSS score nor usable severity: the middle of the medium band.
UNKNOWN_CVSS: Final = 5.5

ComponentKind = Literal["points", "multiplier"]
_FACTOR_TUPLES: Final = frozenset({"criticality", "data_sensitivity"})


@dataclass(frozen=True)
class RiskInputs:
    """What the score of one finding is computed from.

    `severity` is the advisory's severity text ("Critical", "important" …); it
    is only used when `cvss_base` is missing. `criticality` is the asset's
    tier, 1 highest .. 4 lowest. ValueError for values out of range.
    """

    cvss_base: float | None
    severity: str | None
    epss: float | None
    kev: bool
    kev_ransomware: bool
    criticality: int
    internet_facing: bool
    data_sensitivity: str  # public < internal < confidential < restricted

    def __post_init__(self) -> None:
        if self.cvss_base is not None and not _within(self.cvss_base, 0.0, 10.0):
            raise ValueError(f"cvss_base must be between 0.0 and 10.0, not {self.cvss_base!r}")
        if self.epss is not None and not _within(self.epss, 0.0, 1.0):
            raise ValueError(f"epss must be a probability between 0.0 and 1.0, not {self.epss!r}")
        if self.kev_ransomware and not self.kev:
            raise ValueError("kev_ransomware is only known for KEV-listed vulnerabilities")
        if isinstance(self.criticality, bool) or self.criticality not in (1, 2, 3, 4):
            raise ValueError(f"criticality must be a tier 1..4, not {self.criticality!r}")
        if self.data_sensitivity not in DATA_SENSITIVITIES:
            raise ValueError(
                f"data_sensitivity must be one of {', '.join(DATA_SENSITIVITIES)}, "
                f"not {self.data_sensitivity!r}"
            )


@dataclass(frozen=True)
class RiskComponent:
    """One term of a score, as the UI shows it next to the number.

    `contribution` is in points (added) or a factor (multiplied), per `kind`.
    """

    name: str
    value: str
    contribution: float
    kind: ComponentKind
    explanation: str

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready dict of every field."""
        return {
            "name": self.name,
            "value": self.value,
            "contribution": self.contribution,
            "kind": self.kind,
            "explanation": self.explanation,
        }

    def text(self) -> str:
        """One line: name, input, contribution and explanation."""
        amount = (
            f"+{self.contribution:.1f}" if self.kind == "points" else f"×{self.contribution:.2f}"
        )
        return f"{self.name}: {self.value} → {amount} ({self.explanation})"


@dataclass(frozen=True)
class RiskScore:
    """A 0-100 score (one decimal) and every component that made it."""

    score: float
    components: tuple[RiskComponent, ...]

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready dict: the score and its components."""
        return {
            "score": self.score,
            "components": [component.as_dict() for component in self.components],
        }

    def explain(self) -> str:
        """A few lines of text: the formula with its numbers, then one line per component."""
        points = sum(c.contribution for c in self.components if c.kind == "points")
        factors = [c.contribution for c in self.components if c.kind == "multiplier"]
        if factors:
            context = math.prod(factors)
            raw = points * context
            formula = f"{points:.1f} points × {context:.3f} asset context = {raw:.1f}"
        else:
            raw = points
            formula = f"{points:.1f} points"
        if raw > MAX_SCORE:
            formula += f", capped at {MAX_SCORE:.0f}"
        lines = [f"risk {self.score:.1f} / 100: {formula}"]
        lines.extend(f"  {component.text()}" for component in self.components)
        return "\n".join(lines)


@dataclass(frozen=True)
class RiskWeights:
    """How the components combine (see the module documentation for the formula).

    Points: `cvss` per CVSS point, `epss` at probability 1, `kev` and
    `kev_ransomware` when listed. Factors: `criticality` for tiers 1..4,
    `internet_facing` / `not_internet_facing`, and `data_sensitivity` for
    public, internal, confidential, restricted. Patch score: `patch_extra_share`
    of the other findings' scores, at most `patch_extra_cap` points.

    Rules (InvalidInput otherwise), which keep the guarantees of the module
    documentation: every number finite and non-negative; criticality factors
    not rising from tier 1 to tier 4; data-sensitivity factors not falling from
    public to restricted; internet-facing at least not-internet-facing; `kev`
    at least `epss`; `patch_extra_share` at most 1.
    """

    cvss: float = 6.0
    epss: float = 20.0
    kev: float = 25.0
    kev_ransomware: float = 10.0
    criticality: tuple[float, float, float, float] = (1.0, 0.9, 0.8, 0.7)
    internet_facing: float = 1.0
    not_internet_facing: float = 0.8
    data_sensitivity: tuple[float, float, float, float] = (0.7, 0.8, 0.9, 1.0)
    patch_extra_share: float = 0.05
    patch_extra_cap: float = 10.0

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name in _FACTOR_TUPLES and (not isinstance(value, tuple) or len(value) != 4):
                raise InvalidInput(
                    f"risk weight {item.name!r} needs a tuple of 4 factors, not {value!r}"
                )
            numbers = value if isinstance(value, tuple) else (value,)
            for number in numbers:
                if (
                    isinstance(number, bool)
                    or not isinstance(number, int | float)
                    or not math.isfinite(number)
                    or number < 0
                ):
                    raise InvalidInput(
                        f"risk weight {item.name!r} must be a non-negative number, not {number!r}"
                    )
        if list(self.criticality) != sorted(self.criticality, reverse=True):
            raise InvalidInput(
                "risk weight 'criticality': tier 1 is the most critical, so the factors "
                f"must not rise from tier 1 to tier 4, got {list(self.criticality)}"
            )
        if list(self.data_sensitivity) != sorted(self.data_sensitivity):
            raise InvalidInput(
                "risk weight 'data_sensitivity': the factors for "
                f"{', '.join(DATA_SENSITIVITIES)} must not fall, got {list(self.data_sensitivity)}"
            )
        if self.internet_facing < self.not_internet_facing:
            raise InvalidInput(
                "risk weight 'internet_facing' must be at least 'not_internet_facing' "
                f"({self.internet_facing} < {self.not_internet_facing})"
            )
        if self.kev < self.epss:
            raise InvalidInput(
                f"risk weight 'kev' ({self.kev}) must be at least 'epss' ({self.epss}), "
                "so that a KEV listing always outweighs any EPSS probability"
            )
        if self.patch_extra_share > 1:
            raise InvalidInput(
                f"risk weight 'patch_extra_share' must be at most 1, not {self.patch_extra_share}"
            )

    @classmethod
    def from_mapping(cls, data: Mapping[str, object]) -> RiskWeights:
        """Weights from configuration; keys left out keep their defaults.

        `criticality` is a list of 4 factors (tier 1 first); `data_sensitivity`
        a mapping from sensitivity to factor, partial ones keep the defaults.
        """
        if not isinstance(data, Mapping):
            raise InvalidInput(f"risk weights must be a mapping, not {type(data).__name__}")
        names = [item.name for item in fields(cls)]
        unknown = sorted(str(key) for key in data if key not in names)
        if unknown:
            raise InvalidInput(
                f"unknown risk weight(s) {', '.join(unknown)}; valid: {', '.join(names)}"
            )
        values: dict[str, object] = dict(data)
        if "criticality" in values:
            values["criticality"] = _factor_list(values["criticality"])
        if "data_sensitivity" in values:
            values["data_sensitivity"] = _sensitivity_factors(
                values["data_sensitivity"], cls().data_sensitivity
            )
        return cls(**values)  # type: ignore[arg-type]  # checked in __post_init__

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready dict that `from_mapping` reads back into equal weights."""
        values: dict[str, object] = {item.name: getattr(self, item.name) for item in fields(self)}
        values["criticality"] = list(self.criticality)
        values["data_sensitivity"] = dict(
            zip(DATA_SENSITIVITIES, self.data_sensitivity, strict=True)
        )
        return values

    def criticality_factor(self, tier: int) -> float:
        return self.criticality[tier - 1]

    def exposure_factor(self, internet_facing: bool) -> float:
        return self.internet_facing if internet_facing else self.not_internet_facing

    def sensitivity_factor(self, sensitivity: str) -> float:
        return self.data_sensitivity[DATA_SENSITIVITIES.index(sensitivity)]


DEFAULT_WEIGHTS: Final = RiskWeights()


def risk_score(inputs: RiskInputs, weights: RiskWeights = DEFAULT_WEIGHTS) -> RiskScore:
    """The risk score of one finding, with every component explained."""
    cvss, cvss_component = _cvss(inputs, weights)
    epss = inputs.epss if inputs.epss is not None else 0.0
    kev_points = weights.kev if inputs.kev else 0.0
    ransomware_points = weights.kev_ransomware if inputs.kev_ransomware else 0.0
    threat = weights.cvss * cvss + weights.epss * epss + kev_points + ransomware_points

    criticality = weights.criticality_factor(inputs.criticality)
    exposure = weights.exposure_factor(inputs.internet_facing)
    sensitivity = weights.sensitivity_factor(inputs.data_sensitivity)
    context = criticality * exposure * sensitivity

    components = (
        cvss_component,
        _points(
            "EPSS",
            "none" if inputs.epss is None else f"{inputs.epss:.4g}",
            weights.epss * epss,
            "no EPSS score: counted as 0"
            if inputs.epss is None
            else f"{weights.epss:g} points × probability of exploitation in 30 days",
        ),
        _points(
            "KEV",
            "listed" if inputs.kev else "not listed",
            kev_points,
            "in CISA's Known Exploited Vulnerabilities catalogue: exploited in the wild"
            if inputs.kev
            else "not in CISA's Known Exploited Vulnerabilities catalogue",
        ),
        _points(
            "Known ransomware use",
            "yes" if inputs.kev_ransomware else "no",
            ransomware_points,
            "KEV says ransomware campaigns use it"
            if inputs.kev_ransomware
            else "no known ransomware use",
        ),
        _factor(
            "Asset criticality",
            f"tier {inputs.criticality}",
            criticality,
            "tier 1 is the most critical, tier 4 the least",
        ),
        _factor(
            "Internet exposure",
            "internet-facing" if inputs.internet_facing else "not internet-facing",
            exposure,
            "reachable from the internet"
            if inputs.internet_facing
            else "reachable from internal networks only",
        ),
        _factor(
            "Data sensitivity",
            inputs.data_sensitivity,
            sensitivity,
            "public < internal < confidential < restricted",
        ),
    )
    return RiskScore(score=_final(threat * context), components=components)


def patch_risk(
    finding_scores: Sequence[RiskScore], weights: RiskWeights = DEFAULT_WEIGHTS
) -> RiskScore:
    """The risk a patch removes: its riskiest finding plus a bounded bonus for the others.

    Never below the highest finding score; adding a finding or raising a
    finding's score never lowers it. A patch that closes no finding scores 0.
    """
    if not finding_scores:
        return RiskScore(
            score=0.0,
            components=(_points("Findings closed", "0", 0.0, "the patch closes no known finding"),),
        )
    ranked = sorted((finding.score for finding in finding_scores), reverse=True)
    top, others = ranked[0], ranked[1:]
    others_total = math.fsum(others)
    bonus = min(weights.patch_extra_cap, weights.patch_extra_share * others_total)
    count = len(ranked)
    return RiskScore(
        score=_final(top + bonus),
        components=(
            _points(
                "Highest finding",
                f"{top:.1f}",
                top,
                f"the riskiest of the {count} finding{'s' if count != 1 else ''} it closes",
            ),
            _points(
                "Additional findings",
                str(len(others)),
                bonus,
                f"{weights.patch_extra_share * 100:g} % of their scores ({others_total:.1f}), "
                f"at most {weights.patch_extra_cap:g} points",
            ),
        ),
    )


def _cvss(inputs: RiskInputs, weights: RiskWeights) -> tuple[float, RiskComponent]:
    per_point = f"{weights.cvss:g} points per CVSS point"
    if inputs.cvss_base is not None:
        cvss = inputs.cvss_base
        return cvss, _points("CVSS", f"{cvss:.1f}", weights.cvss * cvss, per_point)
    level = normalise_severity(inputs.severity)
    if level is not None:
        cvss = SEVERITY_DEFAULT_CVSS[level]
        value = f"none (severity {level})"
        why = f"no CVSS base score: {cvss:.1f} assumed for severity {level}; {per_point}"
    else:
        cvss = UNKNOWN_CVSS
        value = "none" if inputs.severity is None else f"none (severity {inputs.severity!r})"
        known = "no severity" if inputs.severity is None else "severity not recognised"
        why = f"no CVSS base score and {known}: {cvss:.1f} (medium) assumed; {per_point}"
    return cvss, _points("CVSS", value, weights.cvss * cvss, why)


def _points(name: str, value: str, points: float, explanation: str) -> RiskComponent:
    return RiskComponent(name, value, round(points, 2), "points", explanation)


def _factor(name: str, value: str, factor: float, explanation: str) -> RiskComponent:
    return RiskComponent(name, value, round(factor, 4), "multiplier", explanation)


def _final(raw: float) -> float:
    return round(min(MAX_SCORE, max(0.0, raw)), 1)


def _within(value: float, low: float, high: float) -> bool:
    return (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and math.isfinite(value)
        and low <= value <= high
    )


def _factor_list(value: object) -> tuple[float, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise InvalidInput(
            f"risk weight 'criticality' must be a list of 4 factors (tier 1 first), not {value!r}"
        )
    return tuple(value)


def _sensitivity_factors(
    value: object, defaults: tuple[float, float, float, float]
) -> tuple[object, ...]:
    if not isinstance(value, Mapping):
        raise InvalidInput(
            "risk weight 'data_sensitivity' must map sensitivities "
            f"({', '.join(DATA_SENSITIVITIES)}) to factors, not {value!r}"
        )
    unknown = sorted(str(key) for key in value if key not in DATA_SENSITIVITIES)
    if unknown:
        raise InvalidInput(
            f"unknown data sensitivity {', '.join(unknown)} in risk weight 'data_sensitivity'; "
            f"valid: {', '.join(DATA_SENSITIVITIES)}"
        )
    return tuple(
        value.get(name, default) for name, default in zip(DATA_SENSITIVITIES, defaults, strict=True)
    )
