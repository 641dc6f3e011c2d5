"""SLA policy: due dates, the rule text, status boundaries and policy validation."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patchwarden.errors import InvalidInput
from patchwarden.prioritize import (
    DEFAULT_SLA_POLICY,
    SEVERITY_LEVELS,
    SlaDue,
    SlaPolicy,
    due_date,
    sla_status,
)

KEV_FILE = (
    Path(__file__).resolve().parents[2]
    / ".."
    / "shared"
    / "data"
    / "kev"
    / "known_exploited_vulnerabilities.json"
)


def _utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


# -- severity rule -----------------------------------------------------------


@pytest.mark.parametrize(
    ("first_seen", "severity", "due"),
    [
        # leap year: 15 days from 14 February lands on the 29th
        (_utc(2024, 2, 14, 10), "critical", _utc(2024, 2, 29, 10)),
        (_utc(2023, 2, 14, 10), "critical", _utc(2023, 3, 1, 10)),
        (_utc(2024, 1, 31, 12), "high", _utc(2024, 3, 1, 12)),
        (_utc(2025, 1, 31, 12), "high", _utc(2025, 3, 2, 12)),
        (_utc(2024, 2, 29), "high", _utc(2024, 3, 30)),
        # across the year end
        (_utc(2024, 12, 15, 8, 30), "medium", _utc(2025, 3, 15, 8, 30)),
        (_utc(2023, 12, 31, 23, 30), "critical", _utc(2024, 1, 15, 23, 30)),
        (_utc(2023, 9, 1), "low", _utc(2024, 2, 28)),
        (_utc(2024, 9, 1), "low", _utc(2025, 2, 28)),
        # end of a 31-day month into a 30-day month
        (_utc(2025, 3, 31, 6), "high", _utc(2025, 4, 30, 6)),
        # feed wording and "none"
        (_utc(2025, 8, 1), "Important", _utc(2025, 8, 31)),
        (_utc(2025, 8, 1), "moderate", _utc(2025, 10, 30)),
        (_utc(2025, 8, 1), "none", _utc(2026, 1, 28)),
        # unknown severity: medium
        (_utc(2025, 8, 1), None, _utc(2025, 10, 30)),
        (_utc(2025, 8, 1), "untriaged", _utc(2025, 10, 30)),
    ],
)
def test_severity_due_dates(first_seen: datetime, severity: str | None, due: datetime) -> None:
    result = due_date(first_seen, severity, False, None, DEFAULT_SLA_POLICY)
    assert result.due == due
    assert result.due.tzinfo is UTC
    assert result.first_seen == first_seen


@pytest.mark.parametrize(
    ("severity", "rule"),
    [
        ("high", "high: 30 days after first seen 2025-08-01"),
        ("Critical", "critical: 15 days after first seen 2025-08-01"),
        ("none", "none (uses the low days): 180 days after first seen 2025-08-01"),
        (None, "no severity, treated as medium: 90 days after first seen 2025-08-01"),
        (
            "untriaged",
            "severity 'untriaged' not recognised, treated as medium: "
            "90 days after first seen 2025-08-01",
        ),
    ],
)
def test_severity_rule_text(severity: str | None, rule: str) -> None:
    assert due_date(_utc(2025, 8, 1, 9), severity, False, None).rule == rule


def test_policy_days_are_used() -> None:
    policy = SlaPolicy(critical=7, high=14, medium=30, low=60)
    result = due_date(_utc(2025, 8, 1), "high", False, None, policy)
    assert result.due == _utc(2025, 8, 15)
    assert result.rule == "high: 14 days after first seen 2025-08-01"


# -- KEV rule ----------------------------------------------------------------

SEEN = _utc(2025, 9, 10, 8)


@pytest.mark.parametrize(
    ("severity", "kev_due", "policy", "due", "rule"),
    [
        # the KEV due date is earlier than the severity date: it wins, at the end of its day
        (
            "critical",
            date(2025, 9, 15),
            DEFAULT_SLA_POLICY,
            _utc(2025, 9, 15, 23, 59, 59),
            "KEV due date 2025-09-15 (earlier than critical: 15 days after first seen "
            "2025-09-10, due 2025-09-25)",
        ),
        (
            "low",
            date(2025, 10, 1),
            DEFAULT_SLA_POLICY,
            _utc(2025, 10, 1, 23, 59, 59),
            "KEV due date 2025-10-01 (earlier than low: 180 days after first seen "
            "2025-09-10, due 2026-03-09)",
        ),
        # the severity date is earlier: it wins, and the rule names the KEV date it beat
        (
            "critical",
            date(2025, 10, 30),
            DEFAULT_SLA_POLICY,
            _utc(2025, 9, 25, 8),
            "critical: 15 days after first seen 2025-09-10 (earlier than KEV due date "
            "2025-10-30, due 2025-10-30)",
        ),
        # no KEV due date: 14 days, which beats critical's 15
        (
            "critical",
            None,
            DEFAULT_SLA_POLICY,
            _utc(2025, 9, 24, 8),
            "KEV without a due date: 14 days after first seen 2025-09-10 (earlier than "
            "critical: 15 days after first seen 2025-09-10, due 2025-09-25)",
        ),
        # ... unless the policy gives critical findings less time
        (
            "critical",
            None,
            SlaPolicy(critical=7),
            _utc(2025, 9, 17, 8),
            "critical: 7 days after first seen 2025-09-10 (earlier than KEV without a due "
            "date: 14 days after first seen 2025-09-10, due 2025-09-24)",
        ),
        # a tie names the KEV rule
        (
            "critical",
            None,
            SlaPolicy(critical=10, kev=10),
            _utc(2025, 9, 20, 8),
            "KEV without a due date: 10 days after first seen 2025-09-10 (same time as "
            "critical: 10 days after first seen 2025-09-10, due 2025-09-20)",
        ),
        # a KEV due date on the first-seen day still leaves the rest of that day
        (
            "high",
            date(2025, 9, 10),
            DEFAULT_SLA_POLICY,
            _utc(2025, 9, 10, 23, 59, 59),
            "KEV due date 2025-09-10 (earlier than high: 30 days after first seen "
            "2025-09-10, due 2025-10-10)",
        ),
        # a KEV due date already past when the finding was first seen: the KEV days apply
        (
            "high",
            date(2022, 5, 3),
            DEFAULT_SLA_POLICY,
            _utc(2025, 9, 24, 8),
            "KEV due date 2022-05-03 passed before first seen: 14 days after first seen "
            "2025-09-10 (earlier than high: 30 days after first seen 2025-09-10, "
            "due 2025-10-10)",
        ),
        (
            "high",
            date(2025, 9, 9),
            DEFAULT_SLA_POLICY,
            _utc(2025, 9, 24, 8),
            "KEV due date 2025-09-09 passed before first seen: 14 days after first seen "
            "2025-09-10 (earlier than high: 30 days after first seen 2025-09-10, "
            "due 2025-10-10)",
        ),
    ],
)
def test_kev_due_dates(
    severity: str, kev_due: date | None, policy: SlaPolicy, due: datetime, rule: str
) -> None:
    result = due_date(SEEN, severity, True, kev_due, policy)
    assert (result.due, result.rule) == (due, rule)


def test_kev_due_date_is_ignored_without_kev() -> None:
    result = due_date(SEEN, "high", False, date(2025, 9, 12))
    assert result.due == _utc(2025, 10, 10, 8)
    assert result.rule == "high: 30 days after first seen 2025-09-10"


def test_real_kev_catalogue_due_dates() -> None:
    """Every entry of the real catalogue, first seen the day it was added, as a critical."""
    if not KEV_FILE.is_file():
        pytest.skip(f"shared test data not found: {KEV_FILE.resolve()}")
    entries = json.loads(KEV_FILE.read_text(encoding="utf-8"))["vulnerabilities"]
    passed = 0
    for entry in entries:
        added = date.fromisoformat(entry["dateAdded"])
        kev_due = date.fromisoformat(entry["dueDate"])
        first_seen = datetime(added.year, added.month, added.day, tzinfo=UTC)
        result = due_date(first_seen, "critical", True, kev_due)
        assert first_seen < result.due <= first_seen + timedelta(days=15)
        if kev_due < added:  # the catalogue has a few of these
            passed += 1
            assert result.due == first_seen + timedelta(days=14)
            assert "passed before first seen" in result.rule
        elif kev_due < added + timedelta(days=15):
            end_of_day = datetime(kev_due.year, kev_due.month, kev_due.day, 23, 59, 59, tzinfo=UTC)
            assert result.due == end_of_day
            assert result.rule.startswith(f"KEV due date {kev_due.isoformat()} (earlier than")
        else:
            assert result.rule.startswith("critical: 15 days")
    assert passed > 0


# -- time zones --------------------------------------------------------------


def test_aware_datetimes_in_other_zones_are_converted_to_utc() -> None:
    berlin_summer = timezone(timedelta(hours=2))
    first_seen = datetime(2025, 8, 1, 1, 30, tzinfo=berlin_summer)  # 2025-07-31 23:30 UTC
    result = due_date(first_seen, "high", False, None)
    assert result.due == _utc(2025, 8, 30, 23, 30)
    assert result.due.tzinfo is UTC
    assert result.first_seen == _utc(2025, 7, 31, 23, 30)
    assert result.rule == "high: 30 days after first seen 2025-07-31"
    just_before = datetime(2025, 8, 31, 1, 30, tzinfo=berlin_summer)
    assert sla_status(result, just_before) == "due_soon"
    assert sla_status(result, just_before + timedelta(seconds=1)) == "overdue"


def test_naive_first_seen_is_refused() -> None:
    with pytest.raises(ValueError, match="first_seen must be an aware datetime"):
        due_date(datetime(2025, 8, 1), "high", False, None)


def test_naive_now_and_resolved_at_are_refused() -> None:
    due = due_date(_utc(2025, 8, 1), "high", False, None)
    with pytest.raises(ValueError, match="now must be an aware datetime"):
        sla_status(due, datetime(2025, 8, 2))
    with pytest.raises(ValueError, match="resolved_at must be an aware datetime"):
        sla_status(due, _utc(2025, 8, 2), datetime(2025, 8, 2))


# -- status ------------------------------------------------------------------

SECOND = timedelta(seconds=1)


@pytest.mark.parametrize(
    ("severity", "kev", "window"),
    [
        ("critical", False, timedelta(days=3)),  # 20 % of 15 days is 3 days
        ("high", False, timedelta(days=6)),  # 20 % of 30 days
        ("medium", False, timedelta(days=18)),
        ("low", False, timedelta(days=36)),
        ("critical", True, timedelta(days=3)),  # KEV 14 days: 2.8 days, at least 3
    ],
)
def test_due_soon_window(severity: str, kev: bool, window: timedelta) -> None:
    due = due_date(_utc(2025, 8, 1), severity, kev, None)
    assert due.due - due.due_soon_from == window


def test_status_boundaries() -> None:
    due = due_date(_utc(2025, 8, 1), "high", False, None)  # due 2025-08-31 00:00
    assert due.due == _utc(2025, 8, 31)
    assert due.due_soon_from == _utc(2025, 8, 25)
    assert sla_status(due, _utc(2025, 8, 1)) == "ok"
    assert sla_status(due, due.due_soon_from - SECOND) == "ok"
    assert sla_status(due, due.due_soon_from) == "due_soon"
    assert sla_status(due, due.due) == "due_soon"  # exactly at due: not yet overdue
    assert sla_status(due, due.due + SECOND) == "overdue"
    assert sla_status(due, _utc(2026, 1, 1)) == "overdue"


def test_resolved_status_boundaries() -> None:
    due = due_date(_utc(2025, 8, 1), "high", False, None)
    later = _utc(2030, 1, 1)
    assert sla_status(due, later, resolved_at=_utc(2025, 8, 2)) == "met"
    assert sla_status(due, later, resolved_at=due.due) == "met"
    assert sla_status(due, later, resolved_at=due.due + SECOND) == "missed"
    assert sla_status(due, _utc(2025, 8, 3), resolved_at=_utc(2025, 8, 2)) == "met"


def test_sla_due_rebuilt_from_storage() -> None:
    """Only due and rule stored: the default policy's window (3 days, or 20 % with first_seen)."""
    stored = SlaDue(_utc(2025, 8, 31), "high: 30 days after first seen 2025-08-01")
    assert stored.due_soon_from == _utc(2025, 8, 28)
    assert sla_status(stored, _utc(2025, 8, 27, 23, 59, 59)) == "ok"
    assert sla_status(stored, _utc(2025, 8, 28)) == "due_soon"
    assert sla_status(stored, _utc(2025, 8, 31) + SECOND) == "overdue"
    with_start = SlaDue(_utc(2025, 8, 31), "high", first_seen=_utc(2025, 8, 1))
    assert with_start == dataclasses.replace(
        due_date(_utc(2025, 8, 1), "high", False, None), rule="high"
    )
    assert with_start.due_soon_from == _utc(2025, 8, 25)


def test_sla_due_refuses_naive_datetimes_and_converts_to_utc() -> None:
    with pytest.raises(ValueError, match="due must be an aware datetime"):
        SlaDue(datetime(2025, 8, 31), "rule")
    with pytest.raises(ValueError, match="first_seen must be an aware datetime"):
        SlaDue(_utc(2025, 8, 31), "rule", first_seen=datetime(2025, 8, 1))
    plus_two = timezone(timedelta(hours=2))
    due = SlaDue(datetime(2025, 8, 31, 2, tzinfo=plus_two), "rule")
    assert due.due == _utc(2025, 8, 31)
    assert due.due.tzinfo is UTC


def test_kev_due_date_boundary_is_the_end_of_the_day() -> None:
    due = due_date(SEEN, "critical", True, date(2025, 9, 15))
    assert sla_status(due, _utc(2025, 9, 15, 23, 59, 59)) == "due_soon"
    assert sla_status(due, _utc(2025, 9, 16)) == "overdue"
    assert sla_status(due, _utc(2026, 1, 1), resolved_at=_utc(2025, 9, 15, 23, 59, 59)) == "met"
    assert sla_status(due, _utc(2026, 1, 1), resolved_at=_utc(2025, 9, 16)) == "missed"


def test_due_soon_settings_of_the_policy() -> None:
    policy = SlaPolicy(due_soon_fraction=0.5, due_soon_min_days=0)
    due = due_date(_utc(2025, 8, 1), "high", False, None, policy)
    assert due.due_soon_from == _utc(2025, 8, 16)
    never_soon = SlaPolicy(due_soon_fraction=0.0, due_soon_min_days=0)
    due = due_date(_utc(2025, 8, 1), "high", False, None, never_soon)
    assert sla_status(due, due.due - SECOND) == "ok"
    assert sla_status(due, due.due) == "due_soon"


# -- policy ------------------------------------------------------------------


def test_default_policy() -> None:
    assert SlaPolicy() == DEFAULT_SLA_POLICY
    assert (DEFAULT_SLA_POLICY.critical, DEFAULT_SLA_POLICY.high) == (15, 30)
    assert (DEFAULT_SLA_POLICY.medium, DEFAULT_SLA_POLICY.low, DEFAULT_SLA_POLICY.kev) == (
        90,
        180,
        14,
    )
    assert (DEFAULT_SLA_POLICY.due_soon_fraction, DEFAULT_SLA_POLICY.due_soon_min_days) == (0.2, 3)
    assert [DEFAULT_SLA_POLICY.days_for(level) for level in SEVERITY_LEVELS] == [
        15,
        30,
        90,
        180,
        180,
    ]


def test_policy_from_mapping() -> None:
    policy = SlaPolicy.from_mapping({"critical": 7, "high": 14, "kev": 7, "due_soon_fraction": 0.1})
    assert policy == SlaPolicy(critical=7, high=14, kev=7, due_soon_fraction=0.1)
    assert SlaPolicy.from_mapping({}) == DEFAULT_SLA_POLICY


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"critcal": 7},
            "unknown SLA policy key\\(s\\) critcal; valid: critical, high, medium, low, kev, "
            "due_soon_fraction, due_soon_min_days",
        ),
        ({"high": "30"}, "SLA 'high' must be a whole number of days from 1 to 3650, not '30'"),
        ({"high": 30.0}, "SLA 'high' must be a whole number of days"),
        ({"high": True}, "SLA 'high' must be a whole number of days"),
        ({"critical": 0}, "SLA 'critical' must be a whole number of days from 1 to 3650, not 0"),
        ({"low": 3651}, "SLA 'low' must be a whole number of days"),
        ({"kev": -1}, "SLA 'kev' must be a whole number of days"),
        ({"kev": None}, "SLA 'kev' must be a whole number of days"),
        ({"due_soon_min_days": -1}, "'due_soon_min_days' must be a whole number of days from 0"),
        ({"due_soon_fraction": 1.5}, "'due_soon_fraction' must be a number from 0 to 1"),
        ({"due_soon_fraction": float("nan")}, "'due_soon_fraction' must be a number from 0 to 1"),
        ({"due_soon_fraction": "0.2"}, "'due_soon_fraction' must be a number from 0 to 1"),
        (
            {"critical": 40},
            "SLA days must not be longer for a more severe level "
            "\\(critical <= high <= medium <= low\\), got critical 40, high 30, medium 90, low 180",
        ),
    ],
)
def test_policy_from_bad_mapping(data: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        SlaPolicy.from_mapping(data)


def test_policy_as_dict_round_trips() -> None:
    policy = SlaPolicy(critical=7, high=14, kev=7, due_soon_fraction=0.1)
    data = policy.as_dict()
    assert data == {
        "critical": 7,
        "high": 14,
        "medium": 90,
        "low": 180,
        "kev": 7,
        "due_soon_fraction": 0.1,
        "due_soon_min_days": 3,
    }
    assert SlaPolicy.from_mapping(json.loads(json.dumps(data))) == policy


def test_policy_from_something_else_than_a_mapping() -> None:
    with pytest.raises(InvalidInput, match="SLA policy must be a mapping, not list"):
        SlaPolicy.from_mapping([("critical", 7)])  # type: ignore[arg-type]


# -- properties --------------------------------------------------------------

_moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
_severities = st.sampled_from([*SEVERITY_LEVELS, None, "Important", "bogus"])
_kev_dates = st.none() | st.dates(min_value=date(1999, 1, 1), max_value=date(2101, 1, 1))


@st.composite
def _policies(draw: st.DrawFn) -> SlaPolicy:
    days = sorted(draw(st.lists(st.integers(1, 3650), min_size=4, max_size=4)))
    return SlaPolicy(
        critical=days[0],
        high=days[1],
        medium=days[2],
        low=days[3],
        kev=draw(st.integers(1, 3650)),
        due_soon_fraction=draw(st.floats(0.0, 1.0)),
        due_soon_min_days=draw(st.integers(0, 3650)),
    )


@settings(max_examples=200, deadline=None)
@given(_moments, _severities, st.booleans(), _kev_dates, _policies())
def test_due_date_invariants(
    first_seen: datetime, severity: str | None, kev: bool, kev_due: date | None, policy: SlaPolicy
) -> None:
    result = due_date(first_seen, severity, kev, kev_due, policy)
    assert result.due > first_seen
    assert result.due_soon_from <= result.due
    assert result.due.tzinfo is UTC and result.due_soon_from.tzinfo is UTC
    assert result.rule
    # a KEV listing never gives more time than the severity alone
    assert result.due <= due_date(first_seen, severity, False, None, policy).due


@settings(max_examples=200, deadline=None)
@given(_moments, st.booleans(), _kev_dates, _policies(), st.data())
def test_more_severe_is_never_due_later(
    first_seen: datetime, kev: bool, kev_due: date | None, policy: SlaPolicy, data: st.DataObject
) -> None:
    ranks = sorted(data.draw(st.lists(st.integers(0, 4), min_size=2, max_size=2)))
    severe, mild = SEVERITY_LEVELS[ranks[0]], SEVERITY_LEVELS[ranks[1]]
    assert (
        due_date(first_seen, severe, kev, kev_due, policy).due
        <= due_date(first_seen, mild, kev, kev_due, policy).due
    )


@settings(max_examples=200, deadline=None)
@given(_moments, _severities, st.booleans(), _kev_dates, st.lists(_moments, min_size=2))
def test_open_status_only_moves_forward_in_time(
    first_seen: datetime,
    severity: str | None,
    kev: bool,
    kev_due: date | None,
    moments: list[datetime],
) -> None:
    due: SlaDue = due_date(first_seen, severity, kev, kev_due)
    order = {"ok": 0, "due_soon": 1, "overdue": 2}
    statuses = [order[sla_status(due, now)] for now in sorted(moments)]
    assert statuses == sorted(statuses)
