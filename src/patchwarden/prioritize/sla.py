"""SLA policy: the date by which each finding must be remediated.

Rules, applied by `due_date`:

* severity: `first_seen` + the policy's days for the finding's severity
  (defaults: critical 15, high 30, medium 90, low 180; "none" uses the low
  days). An absent or unrecognised severity is treated as medium, and the rule
  text says so.
* KEV: a KEV-listed finding is due by the end (23:59:59 UTC) of CISA's KEV due
  date, or `first_seen` + `kev` days (default 14) when the catalogue gives no
  due date. A KEV due date that lies before the day the finding was first seen
  cannot be met, so the `kev` days apply instead and the rule text says so.
* The stricter (earlier) of the severity and KEV dates wins; on a tie the KEV
  rule is named. The rule text names the rule that applied and, for KEV
  findings, the one it beat, e.g. "KEV due date 2025-09-15 (earlier than
  critical: 15 days after first seen 2025-09-10, due 2025-09-25)".

Days are whole days of 24 hours after `first_seen`, so month ends and leap
days need no special case. Everything is in UTC: aware datetimes in another
zone are converted, naive ones are refused with ValueError.

`sla_status` reports "due_soon" in the last part of the allowed time: the
larger of `due_soon_fraction` (20 %) of the time from first seen to due and
`due_soon_min_days` (3 days). A finding resolved exactly at its due time has
met its SLA; one second later it has missed it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time, timedelta
from typing import Final, Literal

from patchwarden.errors import InvalidInput
from patchwarden.prioritize.severity import SeverityLevel, normalise_severity

SlaStatus = Literal["ok", "due_soon", "overdue", "met", "missed"]

# Most severe first; "none" has no days of its own and uses "low".
_DAY_FIELDS: Final = ("critical", "high", "medium", "low")
MAX_DAYS: Final = 3650
UNKNOWN_SEVERITY: Final[SeverityLevel] = "medium"


def _check_days(name: str, value: object, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= MAX_DAYS:
        raise InvalidInput(
            f"SLA {name!r} must be a whole number of days from {minimum} to {MAX_DAYS}, "
            f"not {value!r}"
        )


@dataclass(frozen=True)
class SlaPolicy:
    """Days allowed to remediate a finding, by severity and for KEV listings.

    Rules (InvalidInput otherwise): days are whole numbers from 1 to 3650 and
    never longer for a more severe level (critical <= high <= medium <= low);
    `due_soon_fraction` is between 0 and 1, `due_soon_min_days` from 0 to 3650.
    """

    critical: int = 15
    high: int = 30
    medium: int = 90
    low: int = 180
    kev: int = 14  # used when KEV gives no (usable) due date
    due_soon_fraction: float = 0.2
    due_soon_min_days: int = 3

    def __post_init__(self) -> None:
        for name in (*_DAY_FIELDS, "kev"):
            _check_days(name, getattr(self, name), minimum=1)
        _check_days("due_soon_min_days", self.due_soon_min_days, minimum=0)
        fraction = self.due_soon_fraction
        if (
            isinstance(fraction, bool)
            or not isinstance(fraction, int | float)
            or not math.isfinite(fraction)
            or not 0 <= fraction <= 1
        ):
            raise InvalidInput(
                f"SLA 'due_soon_fraction' must be a number from 0 to 1, not {fraction!r}"
            )
        days = [getattr(self, name) for name in _DAY_FIELDS]
        if days != sorted(days):
            raise InvalidInput(
                "SLA days must not be longer for a more severe level "
                "(critical <= high <= medium <= low), got "
                + ", ".join(
                    f"{name} {value}" for name, value in zip(_DAY_FIELDS, days, strict=True)
                )
            )

    @classmethod
    def from_mapping(cls, data: Mapping[str, object]) -> SlaPolicy:
        """A policy from configuration, e.g. ``{"critical": 7, "high": 14}``.

        Keys left out keep their defaults; unknown keys and bad values are
        refused with InvalidInput naming the key and the valid choices.
        """
        if not isinstance(data, Mapping):
            raise InvalidInput(f"SLA policy must be a mapping, not {type(data).__name__}")
        names = [item.name for item in fields(cls)]
        unknown = sorted(str(key) for key in data if key not in names)
        if unknown:
            raise InvalidInput(
                f"unknown SLA policy key(s) {', '.join(unknown)}; valid: {', '.join(names)}"
            )
        return cls(**data)  # type: ignore[arg-type]  # checked in __post_init__

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready dict that `from_mapping` reads back into an equal policy."""
        return {item.name: getattr(self, item.name) for item in fields(self)}

    def days_for(self, severity: SeverityLevel) -> int:
        """Days allowed for a severity level ("none" uses the low days)."""
        days: int = getattr(self, "low" if severity == "none" else severity)
        return days


DEFAULT_SLA_POLICY: Final = SlaPolicy()


@dataclass(frozen=True)
class SlaDue:
    """When a finding is due, the rule that set it, and its due-soon window.

    `due_date` fills every field from the policy it applies. A value rebuilt
    from storage may give only `due` and `rule`: the window is then the
    default policy's (20 % of the time since `first_seen` when that is given,
    at least 3 days). Datetimes are aware and kept in UTC; ValueError for
    naive ones.
    """

    due: datetime
    rule: str
    first_seen: datetime | None = None
    due_soon_fraction: float = SlaPolicy.due_soon_fraction
    due_soon_min_days: int = SlaPolicy.due_soon_min_days

    def __post_init__(self) -> None:
        object.__setattr__(self, "due", _utc(self.due, "due"))
        if self.first_seen is not None:
            object.__setattr__(self, "first_seen", _utc(self.first_seen, "first_seen"))

    @property
    def due_soon_from(self) -> datetime:
        """From when an open finding is "due_soon": the last part of the allowed time."""
        window = timedelta(days=self.due_soon_min_days)
        if self.first_seen is not None and self.due > self.first_seen:
            window = max(window, (self.due - self.first_seen) * self.due_soon_fraction)
        return self.due - window


def due_date(
    first_seen: datetime,
    severity: str | None,
    kev: bool,
    kev_due_date: date | None,
    policy: SlaPolicy = DEFAULT_SLA_POLICY,
) -> SlaDue:
    """The due date of a finding under `policy` (see the module documentation).

    `severity` is a level or feed text ("Critical", "important" …), e.g. from
    `severity_from_cvss`. `kev_due_date` is ignored unless `kev` is set.
    """
    start = _utc(first_seen, "first_seen")
    due, rule = _severity_rule(start, severity, policy)
    if kev:
        kev_due, kev_rule = _kev_rule(start, kev_due_date, policy)
        if kev_due <= due:
            relation = "earlier than" if kev_due < due else "same time as"
            rule = f"{kev_rule} ({relation} {rule}, due {_day(due)})"
            due = kev_due
        else:
            rule = f"{rule} (earlier than {kev_rule}, due {_day(kev_due)})"
    return SlaDue(
        due=due,
        rule=rule,
        first_seen=start,
        due_soon_fraction=policy.due_soon_fraction,
        due_soon_min_days=policy.due_soon_min_days,
    )


def sla_status(due: SlaDue, now: datetime, resolved_at: datetime | None = None) -> SlaStatus:
    """Where a finding stands against its due date.

    Resolved: "met" when resolved at or before the due time, else "missed".
    Open: "overdue" after the due time, "due_soon" from `due.due_soon_from`,
    else "ok". `now` is passed in, never read from the clock.
    """
    current = _utc(now, "now")
    if resolved_at is not None:
        return "met" if _utc(resolved_at, "resolved_at") <= due.due else "missed"
    if current > due.due:
        return "overdue"
    if current >= due.due_soon_from:
        return "due_soon"
    return "ok"


def _severity_rule(
    start: datetime, severity: str | None, policy: SlaPolicy
) -> tuple[datetime, str]:
    level = normalise_severity(severity)
    if level is None:
        days = policy.days_for(UNKNOWN_SEVERITY)
        what = "no severity" if severity is None else f"severity {severity!r} not recognised"
        label = f"{what}, treated as {UNKNOWN_SEVERITY}"
    else:
        days = policy.days_for(level)
        label = "none (uses the low days)" if level == "none" else level
    due = start + timedelta(days=days)
    return due, f"{label}: {days} days after first seen {_day(start)}"


def _kev_rule(
    start: datetime, kev_due_date: date | None, policy: SlaPolicy
) -> tuple[datetime, str]:
    fallback = start + timedelta(days=policy.kev)
    after = f"{policy.kev} days after first seen {_day(start)}"
    if kev_due_date is None:
        return fallback, f"KEV without a due date: {after}"
    if kev_due_date < start.date():
        return (
            fallback,
            f"KEV due date {kev_due_date.isoformat()} passed before first seen: {after}",
        )
    end_of_day = datetime.combine(kev_due_date, time(23, 59, 59), tzinfo=UTC)
    return end_of_day, f"KEV due date {kev_due_date.isoformat()}"


def _utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime (UTC), not naive {value.isoformat()}")
    return value.astimezone(UTC)


def _day(moment: datetime) -> str:
    return moment.date().isoformat()
