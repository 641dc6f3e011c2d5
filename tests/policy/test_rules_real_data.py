"""Auto-approval rules × real patches: Debian DSAs (ids, packages, release
dates) from the security tracker, KEV listings from CISA's catalogue and CVSS
3.1 base scores from the official test vectors, all read through the
project's feed parsers.

The DSA list gives release dates only, so every release instant is 00:00 UTC
of the DSA date: in America/New_York that is still the day before. The CVSS
vectors carry no CVE ids; they stand in for a patch's highest score.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from patchwarden.cvss import score
from patchwarden.policy import (
    ApprovalRule,
    PackagePattern,
    PatchFacts,
    RuleOutcome,
    evaluate,
    evaluate_rules,
)
from patchwarden.prioritize import severity_from_cvss
from tests.policy.conftest import RealData

V98 = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
V70 = "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:L/A:L"
V69 = "CVSS:3.1/AV:N/AC:L/PR:H/UI:R/S:C/C:H/I:N/A:L"


def _utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def _facts(
    data: RealData,
    advisory_id: str,
    package: str | None = None,
    vector: str | None = None,
    *,
    released: bool = True,
) -> PatchFacts:
    advisory = data.advisories[advisory_id]
    cvss = data.cvss[vector] if vector else None
    return PatchFacts(
        package=package or advisory.affected[0].name,
        classification="security",  # a DSA is a security update
        severity=severity_from_cvss(cvss),
        cvss=cvss,
        kev=any(cve in data.kev for cve in advisory.aliases),
        released_at=advisory.published if released else None,
    )


# -- the data the table relies on ----------------------------------------------------


@pytest.mark.parametrize(
    ("advisory_id", "package", "published", "kev_cve"),
    [
        ("DSA-5092-1", "linux", _utc(2022, 3, 7), "CVE-2022-0847"),  # Dirty Pipe
        ("DSA-5263-1", "chromium", _utc(2022, 10, 29), "CVE-2022-3723"),
        ("DSA-5020-1", "apache-log4j2", _utc(2021, 12, 11), "CVE-2021-44228"),  # Log4Shell
        ("DSA-5110-1", "chromium", _utc(2022, 3, 28), "CVE-2022-1096"),
        ("DSA-5380-1", "xorg-server", _utc(2023, 3, 29), None),
        ("DLA-3349-1", "linux-5.10", _utc(2023, 3, 2), "CVE-2023-0266"),
        ("DLA-3369-1", "runc", _utc(2023, 3, 27), None),
    ],
)
def test_real_advisory_facts(
    real_data: RealData, advisory_id: str, package: str, published: datetime, kev_cve: str | None
) -> None:
    advisory = real_data.advisories[advisory_id]
    assert advisory.affected[0].name == package
    assert advisory.published == published
    listed = [cve for cve in advisory.aliases if cve in real_data.kev]
    assert listed == ([kev_cve] if kev_cve else [])


@pytest.mark.parametrize(("vector", "expected"), [(V98, 9.8), (V70, 7.0), (V69, 6.9)])
def test_cvss_vectors_score_as_published(real_data: RealData, vector: str, expected: float) -> None:
    assert real_data.cvss[vector] == expected
    assert score(vector).base_score == expected


# -- rules × patches -----------------------------------------------------------------

KEV_NOW = ApprovalRule("kev-now", kev_only=True, days_after_release=0)
BERLIN_3 = ApprovalRule(
    "security-3d-berlin", frozenset({"security"}), days_after_release=3, timezone="Europe/Berlin"
)
NEW_YORK_7 = ApprovalRule("ny-7d", days_after_release=7, timezone="America/New_York")
NEW_YORK_8 = ApprovalRule("ny-8d", days_after_release=8, timezone="America/New_York")
KOLKATA_2 = ApprovalRule("kolkata-2d", days_after_release=2, timezone="Asia/Kolkata")
AUCKLAND_7 = ApprovalRule("auckland-7d", days_after_release=7, timezone="Pacific/Auckland")
CVSS_7 = ApprovalRule("cvss-7", min_cvss=7.0)
HIGH = ApprovalRule("high", min_severity="high")


def _patterns(*texts: str) -> tuple[PackagePattern, ...]:
    return tuple(PackagePattern.parse(text) for text in texts)


KERNEL_IMAGES = ApprovalRule(
    "kernel-images", include=_patterns("linux-image-*"), exclude=_patterns("linux-image-*-rt-*")
)
BROWSERS = ApprovalRule("browsers", include=_patterns("chromium*", "firefox-esr"))
ENHANCEMENTS = ApprovalRule("enhancements", frozenset({"enhancement", "bugfix"}))

BERLIN_TEXT = (
    "released 2022-10-29 (Europe/Berlin); 3 days after release "
    "→ eligible 2022-11-01 00:00 Europe/Berlin"
)

CASES = [
    # Europe/Berlin, across the end of DST (2022-10-30): 00:00 CET is 23:00 UTC, not 22:00.
    pytest.param(
        "DSA-5263-1", None, None, BERLIN_3, _utc(2022, 10, 31, 22, 59, 59),
        "wait", _utc(2022, 10, 31, 23), BERLIN_TEXT, id="berlin-dst-end-1s-before",
    ),
    pytest.param(
        "DSA-5263-1", None, None, BERLIN_3, _utc(2022, 10, 31, 23),
        "approve", _utc(2022, 10, 31, 23), BERLIN_TEXT, id="berlin-dst-end-at-midnight",
    ),
    # America/New_York: 00:00 UTC on 7 March is 19:00 EST on the 6th, the local release date.
    pytest.param(
        "DSA-5092-1", None, None, NEW_YORK_7, _utc(2022, 3, 13, 4, 59, 59),
        "wait", _utc(2022, 3, 13, 5), "released 2022-03-06 (America/New_York)",
        id="new-york-1s-before",
    ),
    pytest.param(
        "DSA-5092-1", None, None, NEW_YORK_7, _utc(2022, 3, 13, 5),
        "approve", _utc(2022, 3, 13, 5), "eligible 2022-03-13 00:00 America/New_York",
        id="new-york-at-midnight-est",
    ),
    # ... one day later DST has begun (13 March 02:00): midnight is 04:00 UTC.
    pytest.param(
        "DSA-5092-1", None, None, NEW_YORK_8, _utc(2022, 3, 14, 3, 59, 59),
        "wait", _utc(2022, 3, 14, 4), "8 days after release", id="new-york-edt-1s-before",
    ),
    pytest.param(
        "DSA-5092-1", None, None, NEW_YORK_8, _utc(2022, 3, 14, 4),
        "approve", _utc(2022, 3, 14, 4), "eligible 2022-03-14 00:00 America/New_York",
        id="new-york-edt-at-midnight",
    ),
    # Asia/Kolkata, UTC+05:30 all year.
    pytest.param(
        "DSA-5020-1", None, None, KOLKATA_2, _utc(2021, 12, 12, 18, 29, 59),
        "wait", _utc(2021, 12, 12, 18, 30), "released 2021-12-11 (Asia/Kolkata)",
        id="kolkata-1s-before",
    ),
    pytest.param(
        "DSA-5020-1", None, None, KOLKATA_2, _utc(2021, 12, 12, 18, 30),
        "approve", _utc(2021, 12, 12, 18, 30), "eligible 2021-12-13 00:00 Asia/Kolkata",
        id="kolkata-at-midnight",
    ),
    # Pacific/Auckland, across the end of NZ daylight time (2022-04-03): +12 again.
    pytest.param(
        "DSA-5110-1", None, None, AUCKLAND_7, _utc(2022, 4, 3, 11, 59, 59),
        "wait", _utc(2022, 4, 3, 12), "released 2022-03-28 (Pacific/Auckland)",
        id="auckland-dst-end-1s-before",
    ),
    pytest.param(
        "DSA-5110-1", None, None, AUCKLAND_7, _utc(2022, 4, 3, 12),
        "approve", _utc(2022, 4, 3, 12), "eligible 2022-04-04 00:00 Pacific/Auckland",
        id="auckland-at-midnight",
    ),
    # N = 0 and KEV: Dirty Pipe approves at the moment of release; xorg-server is not in KEV.
    pytest.param(
        "DSA-5092-1", None, None, KEV_NOW, _utc(2022, 3, 7),
        "approve", None, "0 days after release: eligible immediately", id="kev-n0-listed",
    ),
    pytest.param(
        "DSA-5380-1", None, None, KEV_NOW, _utc(2023, 3, 29),
        "no_match", None, "not listed in CISA KEV", id="kev-n0-not-listed",
    ),
    pytest.param(
        "DLA-3349-1", None, None, KEV_NOW, _utc(2023, 3, 2),
        "approve", None, "listed in CISA KEV", id="kev-dla-listed",
    ),
    pytest.param(
        "DLA-3369-1", None, None, KEV_NOW, _utc(2023, 4, 1),
        "no_match", None, "not listed in CISA KEV", id="kev-dla-not-listed",
    ),
    # min_cvss 7.0: 7.0 approves, 6.9 does not, no score does not.
    pytest.param(
        "DSA-5380-1", None, V70, CVSS_7, _utc(2023, 3, 29),
        "approve", None, "cvss 7.0 ≥ 7.0", id="cvss-7.0",
    ),
    pytest.param(
        "DSA-5380-1", None, V69, CVSS_7, _utc(2023, 3, 29),
        "no_match", None, "cvss 6.9 < 7.0", id="cvss-6.9",
    ),
    pytest.param(
        "DSA-5380-1", None, None, CVSS_7, _utc(2023, 3, 29),
        "no_match", None, "cvss unknown (rule needs ≥ 7.0)", id="cvss-unknown",
    ),
    # min_severity, with the severity band of the score.
    pytest.param(
        "DSA-5380-1", None, V70, HIGH, _utc(2023, 3, 29),
        "approve", None, "severity high ≥ high", id="severity-high",
    ),
    pytest.param(
        "DSA-5380-1", None, V69, HIGH, _utc(2023, 3, 29),
        "no_match", None, "severity medium < high", id="severity-medium",
    ),
    pytest.param(
        "DSA-5263-1", None, V98, HIGH, _utc(2022, 10, 29),
        "approve", None, "severity critical ≥ high", id="severity-critical",
    ),
    # include / exclude patterns on the binary packages a DSA ships.
    pytest.param(
        "DSA-5092-1", "linux-image-5.10.0-12-amd64", None, KERNEL_IMAGES, _utc(2022, 3, 7),
        "approve", None, "matches include pattern 'linux-image-*'", id="include-hit",
    ),
    pytest.param(
        "DSA-5092-1", "linux-image-5.10.0-12-rt-amd64", None, KERNEL_IMAGES, _utc(2022, 3, 7),
        "no_match", None, "matches exclude pattern 'linux-image-*-rt-*'", id="exclude-hit",
    ),
    pytest.param(
        "DSA-5092-1", "linux-headers-5.10.0-12-amd64", None, KERNEL_IMAGES, _utc(2022, 3, 7),
        "no_match", None, "matches no include pattern ('linux-image-*')", id="include-miss",
    ),
    pytest.param(
        "DSA-5263-1", None, None, BROWSERS, _utc(2022, 10, 29),
        "approve", None, "package chromium matches include pattern 'chromium*'",
        id="include-browser",
    ),
    pytest.param(
        "DSA-5020-1", None, None, BROWSERS, _utc(2021, 12, 11),
        "no_match", None, "package apache-log4j2 matches no include pattern",
        id="include-not-browser",
    ),
    # classification
    pytest.param(
        "DSA-5380-1", None, None, ENHANCEMENTS, _utc(2023, 3, 29),
        "no_match", None, "classification security is not in {bugfix, enhancement}",
        id="classification-miss",
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("advisory_id", "package", "vector", "rule", "now", "kind", "eligible", "reason"), CASES
)
def test_rule_on_real_patch(
    real_data: RealData,
    advisory_id: str,
    package: str | None,
    vector: str | None,
    rule: ApprovalRule,
    now: datetime,
    kind: str,
    eligible: datetime | None,
    reason: str,
) -> None:
    outcome = evaluate(rule, _facts(real_data, advisory_id, package, vector), now)
    assert outcome.kind == kind, outcome.reasons
    assert outcome.rule == rule.name
    assert outcome.eligible_at == eligible
    assert any(reason in text for text in outcome.reasons), outcome.reasons
    if kind == "approve":
        assert outcome.unmet == ()
    else:
        assert outcome.unmet and any(reason in text for text in outcome.unmet)


def test_release_date_unknown_is_no_match(real_data: RealData) -> None:
    facts = _facts(real_data, "DSA-5380-1", released=False)
    outcome = evaluate(BERLIN_3, facts, _utc(2030, 1, 1))
    assert outcome.kind == "no_match"
    assert outcome.eligible_at is None
    assert outcome.unmet == ("release date unknown (the rule waits 3 days after release)",)
    # N = 0 needs no release date at all.
    assert evaluate(KEV_NOW, _facts(real_data, "DSA-5092-1", released=False), _utc(2022, 1, 1))


def test_every_criterion_is_explained(real_data: RealData) -> None:
    rule = ApprovalRule(
        "chromium-kev",
        frozenset({"security"}),
        min_severity="high",
        min_cvss=7.0,
        kev_only=True,
        include=_patterns("chromium"),
        exclude=_patterns("chromium-driver"),
        days_after_release=3,
        timezone="Europe/Berlin",
    )
    outcome = evaluate(rule, _facts(real_data, "DSA-5263-1", vector=V98), _utc(2022, 11, 1))
    assert outcome == RuleOutcome(
        "approve",
        "chromium-kev",
        (
            "package chromium matches include pattern 'chromium'",
            "package chromium matches no exclude pattern ('chromium-driver')",
            "classification security is in {security}",
            "severity critical ≥ high",
            "cvss 9.8 ≥ 7.0",
            "listed in CISA KEV",
            BERLIN_TEXT,
        ),
        (),
        _utc(2022, 10, 31, 23),
    )


def test_failing_criteria_all_listed(real_data: RealData) -> None:
    rule = ApprovalRule("strict", min_cvss=7.0, kev_only=True, days_after_release=3)
    outcome = evaluate(rule, _facts(real_data, "DSA-5380-1", vector=V69), _utc(2023, 3, 30))
    # Other criteria fail too, so it is no_match, not wait, and says everything.
    assert outcome.kind == "no_match"
    assert outcome.eligible_at is None
    assert outcome.unmet[:2] == (
        "cvss 6.9 < 7.0",
        "not listed in CISA KEV (rule approves KEV-listed patches only)",
    )
    assert outcome.unmet[2].endswith("; not yet (now 2023-03-30 00:00:00)")


# -- ordered rule lists --------------------------------------------------------------

RULES = (KEV_NOW, BERLIN_3, KOLKATA_2)


@pytest.mark.parametrize(
    ("advisory_id", "now", "kind", "rule", "eligible"),
    [
        # Dirty Pipe: KEV-listed, the first rule approves at once.
        ("DSA-5092-1", _utc(2022, 3, 7), "approve", "kev-now", None),
        # xorg-server: not KEV; both delays pending, Kolkata's (2 days) ends first.
        ("DSA-5380-1", _utc(2023, 3, 30), "wait", "kolkata-2d", _utc(2023, 3, 30, 18, 30)),
        # one second after Kolkata's midnight it approves, Berlin still waits.
        ("DSA-5380-1", _utc(2023, 3, 30, 18, 30, 1), "approve", "kolkata-2d", None),
    ],
)
def test_evaluate_rules_on_real_patches(
    real_data: RealData,
    advisory_id: str,
    now: datetime,
    kind: str,
    rule: str,
    eligible: datetime | None,
) -> None:
    outcome = evaluate_rules(RULES, _facts(real_data, advisory_id), now)
    assert (outcome.kind, outcome.rule) == (kind, rule)
    if eligible is not None:
        assert outcome.eligible_at == eligible


def test_evaluate_rules_no_match_explains_each_rule(real_data: RealData) -> None:
    facts = _facts(real_data, "DSA-5380-1", vector=V69)
    outcome = evaluate_rules((KEV_NOW, CVSS_7, BROWSERS), facts, _utc(2023, 4, 1))
    assert outcome.kind == "no_match"
    assert outcome.rule is None
    assert outcome.reasons == (
        "rule 'kev-now': not listed in CISA KEV (rule approves KEV-listed patches only)",
        "rule 'cvss-7': cvss 6.9 < 7.0",
        "rule 'browsers': package xorg-server matches no include pattern "
        "('chromium*', 'firefox-esr')",
    )
