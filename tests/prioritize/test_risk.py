"""The explainable risk score: concrete values, explanations, weights and guarantees."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patchwarden.domain.attributes import DATA_SENSITIVITIES
from patchwarden.errors import InvalidInput
from patchwarden.prioritize import (
    DEFAULT_WEIGHTS,
    SEVERITY_LEVELS,
    RiskComponent,
    RiskInputs,
    RiskScore,
    RiskWeights,
    patch_risk,
    risk_score,
)

KEV_FILE = (
    Path(__file__).resolve().parents[2]
    / ".."
    / "shared"
    / "data"
    / "kev"
    / "known_exploited_vulnerabilities.json"
)

COMPONENT_NAMES = (
    "CVSS",
    "EPSS",
    "KEV",
    "Known ransomware use",
    "Asset criticality",
    "Internet exposure",
    "Data sensitivity",
)


def _inputs(**changes: Any) -> RiskInputs:
    """A non-KEV 9.8 without EPSS on an internet-facing tier-1 asset with restricted data."""
    base = RiskInputs(
        cvss_base=9.8,
        severity=None,
        epss=None,
        kev=False,
        kev_ransomware=False,
        criticality=1,
        internet_facing=True,
        data_sensitivity="restricted",
    )
    return dataclasses.replace(base, **changes)


def _component(result: RiskScore, name: str) -> RiskComponent:
    (found,) = (c for c in result.components if c.name == name)
    return found


# -- concrete scores ---------------------------------------------------------

KEV_CRITICAL = {"cvss_base": 9.8, "epss": 0.94, "kev": True}
WORST_CONTEXT = {"criticality": 1, "internet_facing": True, "data_sensitivity": "restricted"}
BEST_CONTEXT = {"criticality": 4, "internet_facing": False, "data_sensitivity": "public"}


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        # KEV-listed critical, likely exploited, on the most exposed asset: (58.8+18.8+25) capped.
        ({**KEV_CRITICAL, **WORST_CONTEXT}, 100.0),
        # The same CVE on an internal tier-4 asset with public data: 102.6 × 0.7 × 0.8 × 0.7.
        ({**KEV_CRITICAL, **BEST_CONTEXT}, 40.2),
        # KEV without an EPSS score: 58.8 + 25.
        ({"kev": True}, 83.8),
        # ... and with known ransomware use: + 10.
        ({"kev": True, "kev_ransomware": True}, 93.8),
        # Not exploited, no EPSS: the CVSS part alone.
        ({}, 58.8),
        # Low CVSS without EPSS or KEV, even on the most exposed asset.
        ({"cvss_base": 3.1}, 18.6),
        # ... on a tier-3 internal asset with confidential data: 18.6 × 0.8 × 0.8 × 0.9.
        (
            {
                "cvss_base": 3.1,
                "criticality": 3,
                "internet_facing": False,
                "data_sensitivity": "confidential",
            },
            10.7,
        ),
        # 7.5 with EPSS 0.3 on tier 2, internet-facing, confidential: (45 + 6) × 0.9 × 0.9.
        (
            {"cvss_base": 7.5, "epss": 0.3, "criticality": 2, "data_sensitivity": "confidential"},
            41.3,
        ),
        # No CVSS: the advisory's band stands in (critical 9.5 -> 57) on a typical asset (× 0.576).
        (
            {
                "cvss_base": None,
                "severity": "Critical",
                "criticality": 2,
                "internet_facing": False,
                "data_sensitivity": "internal",
            },
            32.8,
        ),
        ({"cvss_base": None, "severity": "important"}, 48.0),
        ({"cvss_base": None, "severity": "low"}, 12.0),
        # No CVSS and no usable severity: the middle of medium (5.5 -> 33).
        ({"cvss_base": None}, 33.0),
        ({"cvss_base": None, "severity": "untriaged"}, 33.0),
        ({"cvss_base": 0.0}, 0.0),
        ({"cvss_base": 0.0, "epss": 1.0}, 20.0),
    ],
)
def test_concrete_scores(changes: dict[str, Any], expected: float) -> None:
    assert risk_score(_inputs(**changes)).score == expected


def test_the_design_examples() -> None:
    exposed = risk_score(_inputs(**KEV_CRITICAL, **WORST_CONTEXT)).score
    hidden = risk_score(_inputs(**KEV_CRITICAL, **BEST_CONTEXT)).score
    low = risk_score(_inputs(cvss_base=3.1)).score
    assert exposed >= 99.0
    assert exposed - hidden >= 50.0
    assert low < 20.0


# -- components and explanations --------------------------------------------


def test_every_component_is_shown_in_a_fixed_order() -> None:
    result = risk_score(_inputs(**KEV_CRITICAL, **WORST_CONTEXT))
    assert tuple(c.name for c in result.components) == COMPONENT_NAMES
    assert [c.kind for c in result.components] == ["points"] * 4 + ["multiplier"] * 3


def test_components_of_a_kev_critical() -> None:
    result = risk_score(_inputs(kev=True, kev_ransomware=True, epss=0.94, criticality=2))
    assert result.components == (
        RiskComponent("CVSS", "9.8", 58.8, "points", "6 points per CVSS point"),
        RiskComponent(
            "EPSS", "0.94", 18.8, "points", "20 points × probability of exploitation in 30 days"
        ),
        RiskComponent(
            "KEV",
            "listed",
            25.0,
            "points",
            "in CISA's Known Exploited Vulnerabilities catalogue: exploited in the wild",
        ),
        RiskComponent(
            "Known ransomware use", "yes", 10.0, "points", "KEV says ransomware campaigns use it"
        ),
        RiskComponent(
            "Asset criticality",
            "tier 2",
            0.9,
            "multiplier",
            "tier 1 is the most critical, tier 4 the least",
        ),
        RiskComponent(
            "Internet exposure", "internet-facing", 1.0, "multiplier", "reachable from the internet"
        ),
        RiskComponent(
            "Data sensitivity",
            "restricted",
            1.0,
            "multiplier",
            "public < internal < confidential < restricted",
        ),
    )
    assert result.score == 100.0  # (58.8 + 18.8 + 25 + 10) × 0.9 = 101.34, capped


def test_scores_as_dict_are_json_ready() -> None:
    result = risk_score(_inputs(kev=True))
    data = result.as_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["score"] == 83.8
    assert data["components"][2] == {  # type: ignore[index]
        "name": "KEV",
        "value": "listed",
        "contribution": 25.0,
        "kind": "points",
        "explanation": "in CISA's Known Exploited Vulnerabilities catalogue: exploited in the wild",
    }


def test_missing_epss_is_noted() -> None:
    epss = _component(risk_score(_inputs()), "EPSS")
    assert (epss.value, epss.contribution) == ("none", 0.0)
    assert epss.explanation == "no EPSS score: counted as 0"


@pytest.mark.parametrize(
    ("severity", "value", "explanation"),
    [
        (
            "Important",
            "none (severity high)",
            "no CVSS base score: 8.0 assumed for severity high; 6 points per CVSS point",
        ),
        (
            None,
            "none",
            "no CVSS base score and no severity: 5.5 (medium) assumed; 6 points per CVSS point",
        ),
        (
            "untriaged",
            "none (severity 'untriaged')",
            "no CVSS base score and severity not recognised: 5.5 (medium) assumed; "
            "6 points per CVSS point",
        ),
    ],
)
def test_missing_cvss_is_explained(severity: str | None, value: str, explanation: str) -> None:
    cvss = _component(risk_score(_inputs(cvss_base=None, severity=severity)), "CVSS")
    assert (cvss.value, cvss.explanation) == (value, explanation)


def test_severity_is_ignored_when_there_is_a_cvss_score() -> None:
    assert risk_score(_inputs(cvss_base=2.0, severity="critical")).score == 12.0


def test_explain() -> None:
    result = risk_score(_inputs(**KEV_CRITICAL, **BEST_CONTEXT))
    assert result.explain() == "\n".join(
        [
            "risk 40.2 / 100: 102.6 points × 0.392 asset context = 40.2",
            "  CVSS: 9.8 → +58.8 (6 points per CVSS point)",
            "  EPSS: 0.94 → +18.8 (20 points × probability of exploitation in 30 days)",
            "  KEV: listed → +25.0 (in CISA's Known Exploited Vulnerabilities catalogue: "
            "exploited in the wild)",
            "  Known ransomware use: no → +0.0 (no known ransomware use)",
            "  Asset criticality: tier 4 → ×0.70 (tier 1 is the most critical, tier 4 the least)",
            "  Internet exposure: not internet-facing → ×0.80 "
            "(reachable from internal networks only)",
            "  Data sensitivity: public → ×0.70 (public < internal < confidential < restricted)",
        ]
    )


def test_explain_says_when_the_score_is_capped() -> None:
    first = risk_score(_inputs(**KEV_CRITICAL, **WORST_CONTEXT)).explain().splitlines()[0]
    assert first == "risk 100.0 / 100: 102.6 points × 1.000 asset context = 102.6, capped at 100"


# -- inputs ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"cvss_base": -0.1}, "cvss_base"),
        ({"cvss_base": 10.5}, "cvss_base"),
        ({"cvss_base": float("nan")}, "cvss_base"),
        ({"cvss_base": True}, "cvss_base"),
        ({"epss": 1.01}, "epss"),
        ({"epss": -0.01}, "epss"),
        ({"epss": float("inf")}, "epss"),
        ({"kev_ransomware": True}, "kev_ransomware"),
        ({"criticality": 0}, "criticality"),
        ({"criticality": 5}, "criticality"),
        ({"criticality": True}, "criticality"),
        ({"data_sensitivity": "secret"}, "data_sensitivity"),
    ],
)
def test_inputs_out_of_range_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _inputs(**changes)


# -- weights -----------------------------------------------------------------


def test_default_weights() -> None:
    assert RiskWeights() == DEFAULT_WEIGHTS
    assert dataclasses.asdict(DEFAULT_WEIGHTS) == {
        "cvss": 6.0,
        "epss": 20.0,
        "kev": 25.0,
        "kev_ransomware": 10.0,
        "criticality": (1.0, 0.9, 0.8, 0.7),
        "internet_facing": 1.0,
        "not_internet_facing": 0.8,
        "data_sensitivity": (0.7, 0.8, 0.9, 1.0),
        "patch_extra_share": 0.05,
        "patch_extra_cap": 10.0,
    }


def test_custom_weights_change_the_score() -> None:
    weights = RiskWeights(cvss=10.0, criticality=(1.0, 0.5, 0.5, 0.5))
    result = risk_score(_inputs(cvss_base=5.0, criticality=2), weights)
    assert result.score == 25.0  # 5 × 10 points × 0.5
    assert _component(result, "CVSS").explanation == "10 points per CVSS point"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"cvss": -1.0}, "'cvss' must be a non-negative number"),
        ({"epss": float("nan")}, "'epss' must be a non-negative number"),
        ({"kev_ransomware": float("inf")}, "'kev_ransomware' must be a non-negative number"),
        ({"kev": "25"}, "'kev' must be a non-negative number"),
        ({"patch_extra_cap": True}, "'patch_extra_cap' must be a non-negative number"),
        ({"criticality": (1.0, 0.9, 0.8)}, "'criticality' needs a tuple of 4 factors"),
        ({"data_sensitivity": [0.7, 0.8, 0.9, 1.0]}, "'data_sensitivity' needs a tuple of 4"),
        ({"criticality": (1.0, 0.9, -0.1, 0.0)}, "'criticality' must be a non-negative"),
        ({"criticality": (0.7, 0.8, 0.9, 1.0)}, "must not rise from tier 1 to tier 4"),
        ({"data_sensitivity": (1.0, 0.9, 0.8, 0.7)}, "must not fall"),
        ({"not_internet_facing": 1.5}, "'internet_facing' must be at least"),
        ({"kev": 10.0}, "'kev' \\(10.0\\) must be at least 'epss' \\(20.0\\)"),
        ({"patch_extra_share": 1.5}, "'patch_extra_share' must be at most 1"),
    ],
)
def test_invalid_weights_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        RiskWeights(**changes)


def test_zero_weights_are_allowed() -> None:
    zero = RiskWeights(
        cvss=0.0,
        epss=0.0,
        kev=0.0,
        kev_ransomware=0.0,
        criticality=(0.0, 0.0, 0.0, 0.0),
        internet_facing=0.0,
        not_internet_facing=0.0,
        data_sensitivity=(0.0, 0.0, 0.0, 0.0),
        patch_extra_share=0.0,
        patch_extra_cap=0.0,
    )
    assert risk_score(_inputs(kev=True), zero).score == 0.0


def test_weights_from_mapping() -> None:
    weights = RiskWeights.from_mapping(
        {"kev": 30.0, "criticality": [1.0, 0.8, 0.6, 0.4], "data_sensitivity": {"public": 0.5}}
    )
    assert weights.kev == 30.0
    assert weights.criticality == (1.0, 0.8, 0.6, 0.4)
    assert weights.data_sensitivity == (0.5, 0.8, 0.9, 1.0)
    assert weights.cvss == DEFAULT_WEIGHTS.cvss
    assert RiskWeights.from_mapping({}) == DEFAULT_WEIGHTS


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"cvs": 6, "kevv": 1}, "unknown risk weight\\(s\\) cvs, kevv; valid: cvss, epss, kev, "),
        ({"criticality": "1,0.9,0.8,0.7"}, "'criticality' must be a list of 4 factors"),
        ({"criticality": [1, 0.9]}, "'criticality' needs a tuple of 4 factors, not \\(1, 0.9\\)"),
        ({"data_sensitivity": [0.7, 0.8, 0.9, 1.0]}, "'data_sensitivity' must map"),
        ({"data_sensitivity": {"secret": 1.0}}, "unknown data sensitivity secret"),
        ({"data_sensitivity": {"public": 1.1}}, "must not fall"),
        ({"cvss": None}, "'cvss' must be a non-negative number, not None"),
    ],
)
def test_weights_from_bad_mapping(data: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        RiskWeights.from_mapping(data)


def test_weights_as_dict_round_trips() -> None:
    weights = RiskWeights(kev=40.0, criticality=(1.0, 1.0, 0.5, 0.25))
    data = weights.as_dict()
    assert data["criticality"] == [1.0, 1.0, 0.5, 0.25]
    assert data["data_sensitivity"] == {
        "public": 0.7,
        "internal": 0.8,
        "confidential": 0.9,
        "restricted": 1.0,
    }
    assert json.loads(json.dumps(data)) == data
    assert RiskWeights.from_mapping(json.loads(json.dumps(data))) == weights
    assert RiskWeights.from_mapping(DEFAULT_WEIGHTS.as_dict()) == DEFAULT_WEIGHTS


def test_weights_from_something_else_than_a_mapping() -> None:
    with pytest.raises(InvalidInput, match="must be a mapping, not list"):
        RiskWeights.from_mapping([("cvss", 6)])  # type: ignore[arg-type]


# -- guarantees (hypothesis) -------------------------------------------------

_factors = st.floats(min_value=0.0, max_value=2.0)
_points = st.floats(min_value=0.0, max_value=50.0)


@st.composite
def _weights(draw: st.DrawFn) -> RiskWeights:
    """Any weights that validate."""
    epss = draw(_points)
    exposure = sorted(draw(st.lists(_factors, min_size=2, max_size=2)))
    c1, c2, c3, c4 = sorted(draw(st.lists(_factors, min_size=4, max_size=4)), reverse=True)
    s1, s2, s3, s4 = sorted(draw(st.lists(_factors, min_size=4, max_size=4)))
    return RiskWeights(
        cvss=draw(_points),
        epss=epss,
        kev=epss + draw(_points),
        kev_ransomware=draw(_points),
        criticality=(c1, c2, c3, c4),
        internet_facing=exposure[1],
        not_internet_facing=exposure[0],
        data_sensitivity=(s1, s2, s3, s4),
        patch_extra_share=draw(st.floats(min_value=0.0, max_value=1.0)),
        patch_extra_cap=draw(_points),
    )


_cvss = st.floats(min_value=0.0, max_value=10.0)
_epss = st.floats(min_value=0.0, max_value=1.0)
_tier = st.integers(min_value=1, max_value=4)
_sensitivity = st.sampled_from(DATA_SENSITIVITIES)


@st.composite
def _ordered_pair(draw: st.DrawFn) -> tuple[RiskInputs, RiskInputs]:
    """Two findings where the second is at least as risky as the first in every input."""
    cvss = draw(st.none() | _cvss)
    levels = draw(st.lists(st.integers(0, len(SEVERITY_LEVELS) - 1), min_size=2, max_size=2))
    low_level, high_level = SEVERITY_LEVELS[max(levels)], SEVERITY_LEVELS[min(levels)]
    epss = draw(st.none() | _epss)
    kev = draw(st.booleans())
    ransomware = kev and draw(st.booleans())
    tier = draw(_tier)
    internet = draw(st.booleans())
    sensitivity = draw(st.integers(0, 3))
    lower = RiskInputs(
        cvss_base=cvss,
        severity=low_level,
        epss=epss,
        kev=kev,
        kev_ransomware=ransomware,
        criticality=tier,
        internet_facing=internet,
        data_sensitivity=DATA_SENSITIVITIES[sensitivity],
    )
    higher_kev = kev or draw(st.booleans())
    higher = RiskInputs(
        cvss_base=None if cvss is None else draw(st.floats(min_value=cvss, max_value=10.0)),
        severity=high_level,
        epss=draw(st.none() | _epss) if epss is None else draw(st.floats(epss, 1.0)),
        kev=higher_kev,
        kev_ransomware=ransomware or (higher_kev and draw(st.booleans())),
        criticality=draw(st.integers(1, tier)),
        internet_facing=internet or draw(st.booleans()),
        data_sensitivity=DATA_SENSITIVITIES[draw(st.integers(sensitivity, 3))],
    )
    return lower, higher


@settings(max_examples=200, deadline=None)
@given(_ordered_pair())
def test_more_risk_never_lowers_the_score(pair: tuple[RiskInputs, RiskInputs]) -> None:
    lower, higher = pair
    assert risk_score(higher).score >= risk_score(lower).score


@settings(max_examples=150, deadline=None)
@given(_ordered_pair(), _weights())
def test_more_risk_never_lowers_the_score_under_any_valid_weights(
    pair: tuple[RiskInputs, RiskInputs], weights: RiskWeights
) -> None:
    lower, higher = pair
    assert risk_score(higher, weights).score >= risk_score(lower, weights).score


@st.composite
def _kev_and_not(draw: st.DrawFn) -> tuple[RiskInputs, RiskInputs]:
    """A KEV-listed finding and an unlisted one with the same context and no higher CVSS."""
    cvss = draw(_cvss)
    tier, internet, sensitivity = draw(_tier), draw(st.booleans()), draw(_sensitivity)
    listed = RiskInputs(
        cvss_base=cvss,
        severity=None,
        epss=draw(st.none() | _epss),
        kev=True,
        kev_ransomware=draw(st.booleans()),
        criticality=tier,
        internet_facing=internet,
        data_sensitivity=sensitivity,
    )
    unlisted = RiskInputs(
        cvss_base=draw(st.floats(min_value=0.0, max_value=cvss)),
        severity=None,
        epss=draw(st.none() | _epss),
        kev=False,
        kev_ransomware=False,
        criticality=tier,
        internet_facing=internet,
        data_sensitivity=sensitivity,
    )
    return listed, unlisted


@settings(max_examples=200, deadline=None)
@given(_kev_and_not())
def test_kev_outranks_unlisted_findings(pair: tuple[RiskInputs, RiskInputs]) -> None:
    listed, unlisted = (risk_score(inputs).score for inputs in pair)
    assert listed > unlisted or listed == unlisted == 100.0


@settings(max_examples=150, deadline=None)
@given(_kev_and_not(), _weights())
def test_kev_never_ranks_below_unlisted_findings_under_any_valid_weights(
    pair: tuple[RiskInputs, RiskInputs], weights: RiskWeights
) -> None:
    listed, unlisted = (risk_score(inputs, weights).score for inputs in pair)
    assert listed >= unlisted


@settings(max_examples=150, deadline=None)
@given(_ordered_pair(), _weights())
def test_score_is_in_range_with_one_decimal(
    pair: tuple[RiskInputs, RiskInputs], weights: RiskWeights
) -> None:
    for inputs in pair:
        score = risk_score(inputs, weights).score
        assert 0.0 <= score <= 100.0
        assert round(score, 1) == score


# -- patch score -------------------------------------------------------------


def _scored(*scores: float) -> list[RiskScore]:
    return [RiskScore(score=value, components=()) for value in scores]


@pytest.mark.parametrize(
    ("scores", "expected"),
    [
        ((), 0.0),
        ((58.8,), 58.8),
        ((58.8, 45.0, 30.0), 62.5),  # 58.8 + 5 % of 75
        ((40.0, 40.0), 42.0),
        ((50.0,) * 10, 60.0),  # the bonus is capped at 10 points
        ((50.0,) * 100, 60.0),
        ((98.0, 90.0), 100.0),
        ((0.0, 0.0), 0.0),
    ],
)
def test_patch_scores(scores: tuple[float, ...], expected: float) -> None:
    assert patch_risk(_scored(*scores)).score == expected


def test_patch_explanation() -> None:
    findings = [risk_score(_inputs(cvss_base=value)) for value in (5.0, 9.8, 7.5)]
    result = patch_risk(findings)
    assert result.explain() == "\n".join(
        [
            "risk 62.5 / 100: 62.5 points",
            "  Highest finding: 58.8 → +58.8 (the riskiest of the 3 findings it closes)",
            "  Additional findings: 2 → +3.8 (5 % of their scores (75.0), at most 10 points)",
        ]
    )


def test_patch_without_findings_is_explained() -> None:
    result = patch_risk([])
    assert result.components == (
        RiskComponent("Findings closed", "0", 0.0, "points", "the patch closes no known finding"),
    )


def test_patch_single_finding_wording() -> None:
    top = patch_risk(_scored(10.0)).components[0]
    assert top.explanation == "the riskiest of the 1 finding it closes"


_scores = st.lists(
    st.floats(min_value=0.0, max_value=100.0).map(lambda value: round(value, 1)), max_size=30
)


@settings(max_examples=150, deadline=None)
@given(_scores, st.floats(min_value=0.0, max_value=100.0), _weights())
def test_patch_score_bounds_and_monotonicity(
    scores: list[float], extra: float, weights: RiskWeights
) -> None:
    result = patch_risk(_scored(*scores), weights).score
    top = max(scores, default=0.0)
    assert top <= result <= min(100.0, top + weights.patch_extra_cap + 0.05)
    assert patch_risk(_scored(*scores, extra), weights).score >= result
    assert patch_risk(_scored(*reversed(scores)), weights).score == result
    if scores:
        raised = [*scores[:-1], max(scores[-1], extra)]
        assert patch_risk(_scored(*raised), weights).score >= result


# -- real data ---------------------------------------------------------------


def test_log4shell_from_the_real_kev_catalogue() -> None:
    if not KEV_FILE.is_file():
        pytest.skip(f"shared test data not found: {KEV_FILE.resolve()}")
    entries = json.loads(KEV_FILE.read_text(encoding="utf-8"))["vulnerabilities"]
    (log4shell,) = (e for e in entries if e["cveID"] == "CVE-2021-44228")
    inputs = _inputs(
        cvss_base=10.0,  # CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H
        kev=True,
        kev_ransomware=log4shell["knownRansomwareCampaignUse"] == "Known",
        criticality=2,
        internet_facing=False,
        data_sensitivity="confidential",
    )
    result = risk_score(inputs)
    assert _component(result, "Known ransomware use").contribution == 10.0
    assert result.score == 61.6  # (60 + 25 + 10) × 0.9 × 0.8 × 0.9
