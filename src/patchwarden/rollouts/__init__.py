"""Rollouts (pure): maintenance windows, blackouts and the schedule arithmetic
the rollout engine asks before it starts a job.

Nothing here touches the database, the network or the clock; callers pass
every instant in.

>>> from datetime import UTC, datetime, timedelta
>>> window = MaintenanceWindow(Recurrence.cron("0 2 * * 6"), timedelta(hours=2), "Europe/Berlin")
>>> schedule = Schedule(windows=(window,))
>>> is_open(schedule, datetime(2026, 3, 28, 1, 30, tzinfo=UTC))  # 02:30 in Berlin
True
"""

from patchwarden.rollouts.windows import (
    MAX_BLACKOUT_DURATION,
    MAX_STARTS_PER_SEARCH,
    MAX_WINDOW_DURATION,
    RECURRENCE_KINDS,
    SEARCH_HORIZON,
    Blackout,
    Interval,
    InvalidSchedule,
    MaintenanceWindow,
    Recurrence,
    RecurrenceKind,
    Schedule,
    current_window,
    is_open,
    may_start,
    next_openings,
    parse_blackout,
    parse_schedule,
    parse_window,
)

__all__ = [
    "MAX_BLACKOUT_DURATION",
    "MAX_STARTS_PER_SEARCH",
    "MAX_WINDOW_DURATION",
    "RECURRENCE_KINDS",
    "SEARCH_HORIZON",
    "Blackout",
    "Interval",
    "InvalidSchedule",
    "MaintenanceWindow",
    "Recurrence",
    "RecurrenceKind",
    "Schedule",
    "current_window",
    "is_open",
    "may_start",
    "next_openings",
    "parse_blackout",
    "parse_schedule",
    "parse_window",
]
