"""Approval rules without feed data: the release-delay arithmetic (DST gaps and
repeats, zones that skip a day), validation, serialisation and rule lists."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from patchwarden.errors import InvalidInput
from patchwarden.policy import (
    ApprovalRule,
    InvalidPattern,
    InvalidPolicy,
    PackagePattern,
    PatchFacts,
    eligible_at,
    evaluate,
    evaluate_rules,
)


def _utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def _local(zone: str, year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=ZoneInfo(zone))


# -- the release delay ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("released", "days", "zone", "expected"),
    [
        # Release late in the local evening: the local date counts, not the UTC date.
        (_utc(2026, 11, 1, 22, 30), 3, "Europe/Berlin", _local("Europe/Berlin", 2026, 11, 4)),
        (_utc(2026, 11, 1, 23, 30), 3, "Europe/Berlin", _local("Europe/Berlin", 2026, 11, 5)),
        # New York falls back on 1 November 2026: 03:59 UTC is still 31 October (EDT).
        (_utc(2026, 11, 1, 3, 59), 1, "America/New_York", _utc(2026, 11, 1, 4)),
        (_utc(2026, 11, 1, 4), 1, "America/New_York", _utc(2026, 11, 2, 5)),
        # Berlin spring forward (29 March 2026): midnight still exists, offset changes.
        (_utc(2026, 3, 27, 12), 3, "Europe/Berlin", _utc(2026, 3, 29, 22)),
        # an aware release in another zone is read in the rule's zone
        (
            datetime(2026, 5, 1, 1, 0, tzinfo=timezone(timedelta(hours=5, minutes=30))),
            1,
            "UTC",
            _utc(2026, 5, 1),
        ),
        # Midnight that does not exist: clocks jump 00:00 -> 01:00.
        (_utc(2022, 9, 10, 12), 1, "America/Santiago", _local("America/Santiago", 2022, 9, 11, 1)),
        (_utc(2022, 3, 12, 12), 1, "America/Havana", _local("America/Havana", 2022, 3, 13, 1)),
        # Samoa skipped 30 December 2011 entirely: the next instant is 31 December 00:00.
        (_utc(2011, 12, 29, 12), 1, "Pacific/Apia", _local("Pacific/Apia", 2011, 12, 31)),
        (_utc(2011, 12, 28, 12), 2, "Pacific/Apia", _utc(2011, 12, 30, 10)),
        # Midnight that happens twice (Havana falls back 01:00 -> 00:00): the first one.
        (_utc(2022, 11, 5, 12), 1, "America/Havana", _utc(2022, 11, 6, 4)),
        # Beirut falls back at midnight to 23:00: 00:00 is first shown one hour later.
        (_utc(2022, 10, 29, 12), 1, "Asia/Beirut", _utc(2022, 10, 29, 22)),
        # leap day
        (_utc(2024, 2, 28, 12), 1, "Asia/Kolkata", _local("Asia/Kolkata", 2024, 2, 29)),
        (_utc(2024, 2, 28, 12), 0, "UTC", _utc(2024, 2, 28)),
    ],
)
def test_eligible_at(released: datetime, days: int, zone: str, expected: datetime) -> None:
    result = eligible_at(released, days, zone)
    assert result == expected
    assert result.tzinfo is UTC


@pytest.mark.parametrize(
    ("zone", "released", "eligible_text", "first_instant"),
    [
        (
            "America/Santiago",
            _utc(2022, 9, 10, 12),
            "eligible 2022-09-11 01:00 America/Santiago "
            "(midnight does not exist that day: first valid time)",
            _utc(2022, 9, 11, 4),
        ),
        (
            "Pacific/Apia",
            _utc(2011, 12, 29, 12),
            "eligible 2011-12-31 00:00 Pacific/Apia",
            _utc(2011, 12, 30, 10),
        ),
    ],
)
def test_nonexistent_midnight_boundary(
    zone: str, released: datetime, eligible_text: str, first_instant: datetime
) -> None:
    rule = ApprovalRule("gap", days_after_release=1, timezone=zone)
    facts = PatchFacts("tzdata", "bugfix", released_at=released)
    before = evaluate(rule, facts, first_instant - timedelta(seconds=1))
    at = evaluate(rule, facts, first_instant)
    assert (before.kind, at.kind) == ("wait", "approve")
    assert before.eligible_at == at.eligible_at == first_instant
    assert at.reasons[-1].endswith(eligible_text)


def test_zero_days_is_immediate_even_before_release_or_without_a_date() -> None:
    rule = ApprovalRule("now", days_after_release=0, timezone="Pacific/Auckland")
    released = _utc(2026, 6, 1, 12)
    for facts in (
        PatchFacts("bash", "security", released_at=released),
        PatchFacts("bash", "security"),
    ):
        outcome = evaluate(rule, facts, released - timedelta(hours=1))
        assert outcome.kind == "approve"
        assert outcome.eligible_at is None
        assert outcome.reasons == ("0 days after release: eligible immediately",)


@pytest.mark.parametrize(
    ("released", "days", "zone", "error"),
    [
        (datetime(2026, 1, 1), 1, "UTC", "has no time zone"),
        (_utc(2026, 1, 1), -1, "UTC", "from 0 to 3650"),
        (_utc(2026, 1, 1), 3651, "UTC", "from 0 to 3650"),
        (_utc(2026, 1, 1), True, "UTC", "whole number"),
        (_utc(2026, 1, 1), 1, "Mars/Olympus_Mons", "unknown time zone"),
    ],
)
def test_eligible_at_refuses(released: datetime, days: Any, zone: str, error: str) -> None:
    with pytest.raises(InvalidPolicy, match=error):
        eligible_at(released, days, zone)


# -- evaluate ------------------------------------------------------------------------

NOW = _utc(2026, 11, 10)


def test_naive_now_is_refused() -> None:
    rule = ApprovalRule("any")
    with pytest.raises(InvalidPolicy, match="has no time zone"):
        evaluate(rule, PatchFacts("bash", "security"), datetime(2026, 1, 1))
    with pytest.raises(InvalidPolicy, match="has no time zone"):
        evaluate_rules([rule], PatchFacts("bash", "security"), datetime(2026, 1, 1))


def test_rule_without_criteria_approves_everything() -> None:
    outcome = evaluate(ApprovalRule("everything"), PatchFacts("bash", "unclassified"), NOW)
    assert outcome.kind == "approve"
    assert outcome.reasons == ("the rule sets no criteria: every patch matches",)


def test_disabled_rule_never_matches() -> None:
    outcome = evaluate(ApprovalRule("off", enabled=False), PatchFacts("bash", "security"), NOW)
    assert (outcome.kind, outcome.unmet) == ("no_match", ("rule 'off' is disabled",))


@pytest.mark.parametrize(
    ("severity", "minimum", "kind", "reason"),
    [
        ("critical", "critical", "approve", "severity critical ≥ critical"),
        ("high", "critical", "no_match", "severity high < critical"),
        ("low", "low", "approve", "severity low ≥ low"),
        ("none", "low", "no_match", "severity none < low"),
        (None, "low", "no_match", "severity unknown (rule needs ≥ low)"),
    ],
)
def test_min_severity(severity: Any, minimum: Any, kind: str, reason: str) -> None:
    rule = ApprovalRule("sev", min_severity=minimum)
    outcome = evaluate(rule, PatchFacts("bash", "security", severity), NOW)
    assert (outcome.kind, outcome.reasons) == (kind, (reason,))


@pytest.mark.parametrize(
    ("cvss", "minimum", "kind", "reason"),
    [
        (7.0, 7.0, "approve", "cvss 7.0 ≥ 7.0"),
        (6.9, 7.0, "no_match", "cvss 6.9 < 7.0"),
        (6.95, 6.95, "approve", "cvss 6.95 ≥ 6.95"),
        (10, 0, "approve", "cvss 10.0 ≥ 0.0"),
        (0.0, 0.1, "no_match", "cvss 0.0 < 0.1"),
    ],
)
def test_min_cvss(cvss: float, minimum: float, kind: str, reason: str) -> None:
    outcome = evaluate(
        ApprovalRule("c", min_cvss=minimum), PatchFacts("x", "security", cvss=cvss), NOW
    )
    assert (outcome.kind, outcome.reasons) == (kind, (reason,))


@pytest.mark.parametrize(
    ("package", "include", "exclude", "kind"),
    [
        ("openssl", (), ("linux-*",), "approve"),
        ("linux-image-amd64", (), ("linux-*",), "no_match"),
        ("libssl3", ("libssl*", "openssl"), (), "approve"),
        ("libssl3", ("lib*",), ("libssl?",), "no_match"),  # exclude wins over include
        ("libssl10", ("lib*",), ("libssl?",), "approve"),  # ? is exactly one character
        ("NetworkManager", ("networkmanager",), (), "no_match"),  # case-sensitive
        ("python3.11", ("python3.[0-9]*",), (), "approve"),
    ],
)
def test_include_exclude(
    package: str, include: tuple[str, ...], exclude: tuple[str, ...], kind: str
) -> None:
    rule = ApprovalRule("p", include=include, exclude=exclude)  # type: ignore[arg-type]
    assert evaluate(rule, PatchFacts(package, "security"), NOW).kind == kind


# -- validation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"name": "  "}, "needs a name"),
        ({"name": "x" * 129}, "at most 128"),
        ({"name": "bad\nname"}, "printable"),
        (
            {"classifications": frozenset({"security", "hotfix"})},
            "unknown classification.*'hotfix'",
        ),
        ({"classifications": "security"}, "a set of names"),
        ({"min_severity": "none"}, "min_severity 'none' is not one of low, medium, high"),
        ({"min_severity": "Important"}, "min_severity 'Important'"),
        ({"min_cvss": 10.1}, "min_cvss must be a number from 0.0 to 10.0"),
        ({"min_cvss": -0.1}, "min_cvss must be a number"),
        ({"min_cvss": float("nan")}, "min_cvss must be a number"),
        ({"min_cvss": True}, "min_cvss must be a number"),
        ({"min_cvss": "7"}, "min_cvss must be a number"),
        ({"kev_only": "yes"}, "kev_only must be true or false"),
        ({"enabled": 1}, "enabled must be true or false"),
        ({"days_after_release": -1}, "days_after_release must be a whole number"),
        ({"days_after_release": 3651}, "days_after_release must be a whole number"),
        ({"days_after_release": 1.5}, "days_after_release must be a whole number"),
        ({"days_after_release": True}, "days_after_release must be a whole number"),
        ({"timezone": "Mars/Olympus_Mons"}, "unknown time zone 'Mars/Olympus_Mons'"),
        ({"timezone": "europe/berlin"}, "unknown time zone 'europe/berlin'"),
        ({"timezone": "localtime"}, "does not name a place"),
        ({"timezone": "../etc/passwd"}, "unknown time zone"),
        ({"timezone": ""}, "time zone must be a non-empty name"),
        ({"include": "openssl"}, "include must be a list of package patterns"),
        ({"include": [3]}, "is not a package pattern"),
    ],
)
def test_rule_validation(fields: dict[str, Any], error: str) -> None:
    with pytest.raises(InvalidPolicy, match=error) as info:
        ApprovalRule(**{"name": "rule", **fields})
    assert isinstance(info.value, InvalidInput)
    assert info.value.http_status == 422


@pytest.mark.parametrize("bad", ["^openssl$", "(a|b)", "open ssl", "linux-[image", ""])
def test_rule_patterns_are_validated(bad: str) -> None:
    with pytest.raises(InvalidPattern):
        ApprovalRule("p", exclude=(bad,))  # type: ignore[arg-type]


def test_rule_normalises_its_values() -> None:
    rule = ApprovalRule(
        "  weekly  ",
        ["security", "bugfix", "security"],  # type: ignore[arg-type]
        min_cvss=7,
        include=["linux-*", PackagePattern.parse("linux-*"), "libc6"],  # type: ignore[arg-type]
    )
    assert rule.name == "weekly"
    assert rule.classifications == frozenset({"security", "bugfix"})
    assert rule.min_cvss == 7.0 and isinstance(rule.min_cvss, float)
    assert rule.include == (PackagePattern.parse("linux-*"), PackagePattern.parse("libc6"))


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"package": ""}, "needs a package name"),
        ({"classification": "hotfix"}, "classification 'hotfix' is not one of"),
        ({"severity": "Important"}, "map feed wording with normalise_severity"),
        ({"cvss": 11.0}, "cvss must be a number from 0.0 to 10.0"),
        ({"kev": "true"}, "kev must be true or false"),
        ({"released_at": datetime(2026, 1, 1)}, "released_at 2026-01-01T00:00:00 has no time zone"),
        ({"released_at": "2026-01-01"}, "released_at must be a datetime"),
    ],
)
def test_patch_facts_validation(fields: dict[str, Any], error: str) -> None:
    with pytest.raises(InvalidPolicy, match=error):
        PatchFacts(**{"package": "bash", "classification": "security", **fields})


def test_rule_round_trips_through_a_mapping() -> None:
    rule = ApprovalRule(
        "sec-high",
        frozenset({"security"}),
        min_severity="high",
        min_cvss=7.5,
        kev_only=True,
        include=(PackagePattern.parse("open*"),),
        exclude=(PackagePattern.parse("openjdk-*"),),
        days_after_release=7,
        timezone="Europe/Berlin",
        enabled=False,
    )
    assert ApprovalRule.from_mapping(rule.as_dict()) == rule
    assert rule.as_dict()["include"] == ["open*"]


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"name": "x", "days": 3}, "unknown rule key.*days.*valid: name, classifications"),
        ({"classifications": ["security"]}, "needs a name"),
        (["name"], "must be a mapping"),
    ],
)
def test_from_mapping_refuses(data: Any, error: str) -> None:
    with pytest.raises(InvalidPolicy, match=error):
        ApprovalRule.from_mapping(data)


# -- rule lists ----------------------------------------------------------------------


def test_first_approving_rule_decides_in_order() -> None:
    facts = PatchFacts("openssl", "security", "high", released_at=_utc(2026, 11, 1))
    rules = [
        ApprovalRule("kev", kev_only=True),
        ApprovalRule("security", frozenset({"security"})),
        ApprovalRule("everything"),
    ]
    outcome = evaluate_rules(rules, facts, NOW)
    assert (outcome.kind, outcome.rule) == ("approve", "security")


def test_equal_waits_go_to_the_first_rule() -> None:
    facts = PatchFacts("openssl", "security", released_at=_utc(2026, 11, 1, 12))
    rules = [
        ApprovalRule("a", days_after_release=5),
        ApprovalRule("b", days_after_release=3),
        ApprovalRule("c", days_after_release=3),
    ]
    outcome = evaluate_rules(rules, facts, _utc(2026, 11, 2))
    assert (outcome.kind, outcome.rule, outcome.eligible_at) == ("wait", "b", _utc(2026, 11, 4))


def test_rule_lists_need_unique_names_and_say_when_empty() -> None:
    facts = PatchFacts("bash", "security")
    with pytest.raises(InvalidPolicy, match="two rules are named 'x'"):
        evaluate_rules([ApprovalRule("x"), ApprovalRule("x", kev_only=True)], facts, NOW)
    outcome = evaluate_rules([], facts, NOW)
    assert (outcome.kind, outcome.rule, outcome.reasons) == (
        "no_match",
        None,
        ("no auto-approval rules",),
    )
    disabled = evaluate_rules([ApprovalRule("x", enabled=False)], facts, NOW)
    assert disabled.reasons == ("rule 'x': rule 'x' is disabled",)
