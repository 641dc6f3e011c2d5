"""Exceptions in the product's sense: risk acceptances, with a reason and an end.

A risk acceptance covers one finding, one patch or one asset (`scope`,
`target_id`), says why (`justification`) and ends (`expires_at`). It is
active while ``now < expires_at`` and expired from `expires_at` on, to the
second: a finding excepted until 12:00 is open again at 12:00.

Two levels of checking, on purpose:

* the value itself (`RiskAcceptance(...)`) checks what is true for ever:
  a known scope, a positive id, a justification of 10-4000 characters after
  trimming (stored trimmed), an aware expiry. Stored acceptances that have
  since expired still load.
* `RiskAcceptance.create(..., now=)` checks what is true only when one is
  granted: the expiry lies strictly after `now` and at most `max_days`
  (365 by default, up to 3650) ahead. There is no open-ended acceptance:
  every accepted risk comes back for review.

This module is called ``exceptions`` after the product word; its class is
``RiskAcceptance`` so it cannot be mistaken for a Python exception.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal

from patchwarden.policy.errors import InvalidPolicy

ScopeKind = Literal["finding", "patch", "asset"]
SCOPE_KINDS: Final[tuple[ScopeKind, ...]] = ("finding", "patch", "asset")
MIN_JUSTIFICATION: Final = 10
MAX_JUSTIFICATION: Final = 4000
DEFAULT_MAX_DAYS: Final = 365
MAX_DAYS_LIMIT: Final = 3650
DEFAULT_RECENT: Final = timedelta(days=7)


def _aware(value: object, what: str) -> datetime:
    if not isinstance(value, datetime):
        raise InvalidPolicy(f"{what} must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidPolicy(
            f"{what} {value.isoformat()} has no time zone; give an aware date-time "
            "(e.g. 2026-03-31T00:00:00+00:00)"
        )
    return value


@dataclass(frozen=True)
class RiskAcceptance:
    """An accepted risk; see the module docstring for the rules (InvalidPolicy)."""

    scope: ScopeKind
    target_id: int
    justification: str
    expires_at: datetime

    def __post_init__(self) -> None:
        if self.scope not in SCOPE_KINDS:
            raise InvalidPolicy(
                f"unknown exception scope {self.scope!r}; valid: {', '.join(SCOPE_KINDS)}"
            )
        if isinstance(self.target_id, bool) or not isinstance(self.target_id, int):
            raise InvalidPolicy(
                f"the {self.scope} id must be a whole number, not {self.target_id!r}"
            )
        if self.target_id < 1:
            raise InvalidPolicy(f"the {self.scope} id must be positive, not {self.target_id}")
        if not isinstance(self.justification, str):
            raise InvalidPolicy("a justification is required: say why the risk is accepted")
        text = self.justification.strip()
        if not text:
            raise InvalidPolicy("a justification is required: say why the risk is accepted")
        if len(text) < MIN_JUSTIFICATION:
            raise InvalidPolicy(
                f"the justification {text!r} is too short: write at least {MIN_JUSTIFICATION} "
                "characters saying why the risk is accepted"
            )
        if len(text) > MAX_JUSTIFICATION:
            raise InvalidPolicy(
                f"the justification is {len(text)} characters long; at most "
                f"{MAX_JUSTIFICATION} are allowed"
            )
        if "\x00" in text:
            raise InvalidPolicy("the justification must not contain NUL characters")
        object.__setattr__(self, "justification", text)
        _aware(self.expires_at, "expires_at")

    @classmethod
    def create(
        cls,
        scope: ScopeKind,
        target_id: int,
        justification: str,
        expires_at: datetime,
        *,
        now: datetime,
        max_days: int = DEFAULT_MAX_DAYS,
    ) -> RiskAcceptance:
        """A new acceptance: the value's rules, plus an expiry strictly after
        `now` and at most `max_days` days (of 24 hours) after it."""
        if isinstance(max_days, bool) or not isinstance(max_days, int):
            raise InvalidPolicy(f"max_days must be a whole number of days, not {max_days!r}")
        if not 1 <= max_days <= MAX_DAYS_LIMIT:
            raise InvalidPolicy(f"max_days must be from 1 to {MAX_DAYS_LIMIT}, not {max_days}")
        _aware(now, "now")
        acceptance = cls(scope, target_id, justification, expires_at)
        if acceptance.expires_at <= now:
            raise InvalidPolicy(
                f"expires_at {acceptance.expires_at.isoformat()} is not in the future "
                f"(now {now.isoformat()}); an exception must end later than now"
            )
        latest = now + timedelta(days=max_days)
        if acceptance.expires_at > latest:
            raise InvalidPolicy(
                f"expires_at {acceptance.expires_at.isoformat()} is more than {max_days} days "
                f"ahead; the latest allowed is {latest.isoformat()}"
            )
        return acceptance


def is_active(acceptance: RiskAcceptance, now: datetime) -> bool:
    """True while ``now < expires_at``."""
    return _aware(now, "now") < acceptance.expires_at


def expired(acceptance: RiskAcceptance, now: datetime) -> bool:
    """True from `expires_at` on (the exact opposite of `is_active`)."""
    return not is_active(acceptance, now)


@dataclass(frozen=True)
class ExpirySplit:
    """Acceptances sorted for a report, each group by `expires_at` (soonest first).

    `just_expired` ended within the recent window (``now - recent <= expires_at
    <= now``); `expired_earlier` ended before it. Nothing is dropped.
    """

    active: tuple[RiskAcceptance, ...]
    just_expired: tuple[RiskAcceptance, ...]
    expired_earlier: tuple[RiskAcceptance, ...]


def split_by_expiry(
    acceptances: Iterable[RiskAcceptance], now: datetime, recent: timedelta = DEFAULT_RECENT
) -> ExpirySplit:
    """Active, just-expired (within `recent`, 7 days by default) and earlier-expired acceptances."""
    _aware(now, "now")
    if recent < timedelta(0):
        raise InvalidPolicy(f"the recent window must not be negative, not {recent}")
    active: list[RiskAcceptance] = []
    just: list[RiskAcceptance] = []
    earlier: list[RiskAcceptance] = []
    cutoff = now - recent
    for acceptance in sorted(acceptances, key=lambda a: a.expires_at):
        if is_active(acceptance, now):
            active.append(acceptance)
        elif acceptance.expires_at >= cutoff:
            just.append(acceptance)
        else:
            earlier.append(acceptance)
    return ExpirySplit(tuple(active), tuple(just), tuple(earlier))
