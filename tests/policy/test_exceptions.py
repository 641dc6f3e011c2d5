"""Risk acceptances: validation at grant time, activity to the second, report split."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from patchwarden.policy import (
    InvalidPolicy,
    RiskAcceptance,
    expired,
    is_active,
    split_by_expiry,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
WHY = "Compensating control: the host is only reachable from the jump server."


def _grant(**changes: Any) -> RiskAcceptance:
    values: dict[str, Any] = {
        "scope": "finding",
        "target_id": 17,
        "justification": WHY,
        "expires_at": NOW + timedelta(days=30),
        "now": NOW,
    }
    values.update(changes)
    return RiskAcceptance.create(**values)


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"justification": ""}, "a justification is required"),
        ({"justification": "   \n "}, "a justification is required"),
        ({"justification": None}, "a justification is required"),
        ({"justification": "  too short "}, "'too short' is too short: write at least 10"),
        ({"justification": "x" * 4001}, "4001 characters long; at most 4000"),
        ({"justification": "accepted\x00because"}, "NUL"),
        ({"expires_at": NOW}, "is not in the future"),
        ({"expires_at": NOW - timedelta(seconds=1)}, "is not in the future"),
        ({"expires_at": NOW - timedelta(days=400)}, "is not in the future"),
        ({"expires_at": NOW + timedelta(days=365, seconds=1)}, "more than 365 days ahead"),
        ({"expires_at": NOW + timedelta(days=31), "max_days": 30}, "more than 30 days ahead"),
        ({"expires_at": datetime(2026, 6, 1)}, "expires_at 2026-06-01T00:00:00 has no time zone"),
        ({"expires_at": "2026-06-01"}, "expires_at must be a datetime"),
        ({"now": datetime(2026, 3, 1)}, "now 2026-03-01T00:00:00 has no time zone"),
        ({"scope": "group"}, "unknown exception scope 'group'; valid: finding, patch, asset"),
        ({"target_id": 0}, "the finding id must be positive"),
        ({"target_id": "17"}, "the finding id must be a whole number"),
        ({"target_id": True}, "the finding id must be a whole number"),
        ({"max_days": 0}, "max_days must be from 1 to 3650"),
        ({"max_days": 3651}, "max_days must be from 1 to 3650"),
        ({"max_days": 30.0}, "max_days must be a whole number"),
    ],
)
def test_create_refuses(changes: dict[str, Any], error: str) -> None:
    with pytest.raises(InvalidPolicy, match=error) as info:
        _grant(**changes)
    assert info.value.http_status == 422


@pytest.mark.parametrize(
    ("changes", "expires_at"),
    [
        ({}, NOW + timedelta(days=30)),
        ({"expires_at": NOW + timedelta(seconds=1)}, NOW + timedelta(seconds=1)),
        ({"expires_at": NOW + timedelta(days=365)}, NOW + timedelta(days=365)),  # the maximum
        ({"expires_at": NOW + timedelta(days=900), "max_days": 1000}, NOW + timedelta(days=900)),
        # another zone, same instant rules
        (
            {
                "expires_at": datetime(
                    2026, 3, 1, 18, 0, tzinfo=timezone(timedelta(hours=5, minutes=30))
                )
            },
            datetime(2026, 3, 1, 12, 30, tzinfo=UTC),
        ),
        ({"scope": "asset", "target_id": 3}, NOW + timedelta(days=30)),
        ({"scope": "patch"}, NOW + timedelta(days=30)),
    ],
)
def test_create_accepts(changes: dict[str, Any], expires_at: datetime) -> None:
    acceptance = _grant(**changes)
    assert acceptance.expires_at == expires_at


def test_justification_is_trimmed_and_stored_values_may_have_expired() -> None:
    acceptance = _grant(justification=f"\n  {WHY}  \n")
    assert acceptance.justification == WHY
    # Loading an acceptance that has since expired is fine: only granting checks "future".
    old = RiskAcceptance("patch", 5, WHY, NOW - timedelta(days=90))
    assert expired(old, NOW)


@pytest.mark.parametrize(
    ("now", "active"),
    [
        (NOW + timedelta(days=30) - timedelta(microseconds=1), True),
        (NOW + timedelta(days=30), False),  # expired exactly at expires_at
        (NOW + timedelta(days=31), False),
        (NOW - timedelta(days=1), True),
    ],
)
def test_active_and_expired_are_opposites(now: datetime, active: bool) -> None:
    acceptance = _grant()
    assert is_active(acceptance, now) is active
    assert expired(acceptance, now) is not active


def test_naive_now_is_refused_when_checking() -> None:
    with pytest.raises(InvalidPolicy, match="has no time zone"):
        is_active(_grant(), datetime(2026, 3, 2))


def test_split_by_expiry() -> None:
    def ending(delta: timedelta, target: int) -> RiskAcceptance:
        return RiskAcceptance("finding", target, WHY, NOW + delta)

    later = ending(timedelta(days=10), 1)
    soon = ending(timedelta(hours=1), 2)
    just_now = ending(timedelta(0), 3)
    six_days = ending(-timedelta(days=6), 4)
    week_edge = ending(-timedelta(days=7), 5)
    long_ago = ending(-timedelta(days=7, seconds=1), 6)
    split = split_by_expiry([later, long_ago, soon, week_edge, just_now, six_days], NOW)
    assert split.active == (soon, later)
    assert split.just_expired == (week_edge, six_days, just_now)
    assert split.expired_earlier == (long_ago,)
    narrow = split_by_expiry([six_days, just_now], NOW, recent=timedelta(days=1))
    assert (narrow.just_expired, narrow.expired_earlier) == ((just_now,), (six_days,))
    with pytest.raises(InvalidPolicy, match="must not be negative"):
        split_by_expiry([], NOW, recent=timedelta(days=-1))
