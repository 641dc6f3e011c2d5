"""Maintenance windows and blackouts: wall-clock starts across DST in four
zones, gaps and repeated hours, blackouts, boundaries, validation and the
storage form. Expected instants are worked out by hand from the zones' rules:

* Europe/Berlin: CET (+1) / CEST (+2); 2026 changes on Sunday 29 March at
  02:00 -> 03:00 and Sunday 25 October at 03:00 -> 02:00 (both 01:00 UTC).
* America/New_York: EST (-5) / EDT (-4); 2026 changes on Sunday 8 March at
  02:00 -> 03:00 (07:00 UTC) and Sunday 1 November at 02:00 -> 01:00 (06:00 UTC).
* Australia/Sydney: AEST (+10) / AEDT (+11); 2026 DST ends Sunday 5 April at
  03:00 -> 02:00 (16:00 UTC on 4 April) and starts Sunday 4 October at
  02:00 -> 03:00 (16:00 UTC on 3 October).
* Asia/Kolkata: IST (+05:30) all year.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr

from patchwarden.errors import InvalidInput
from patchwarden.rollouts import (
    Blackout,
    Interval,
    InvalidSchedule,
    MaintenanceWindow,
    Recurrence,
    Schedule,
    current_window,
    is_open,
    may_start,
    next_openings,
    parse_blackout,
    parse_schedule,
    parse_window,
)


def _utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def _window(text: str, minutes: int, zone: str) -> MaintenanceWindow:
    is_cron = text[0].isdigit() or text[0] in "*@"
    recurrence = Recurrence.cron(text) if is_cron else Recurrence.rrule(text)
    return MaintenanceWindow(recurrence, timedelta(minutes=minutes), zone)


def _schedule(*windows: MaintenanceWindow, blackouts: tuple[Blackout, ...] = ()) -> Schedule:
    return Schedule(windows, blackouts)


def _spans(openings: list[Interval]) -> list[tuple[datetime | None, datetime | None]]:
    return [(opening.start, opening.end) for opening in openings]


def _starts(schedule: Schedule, after: datetime, count: int) -> list[datetime | None]:
    return [opening.start for opening in next_openings(schedule, after, count)]


SATURDAY_2AM = "0 2 * * 6"


# -- wall-clock starts across DST changes --------------------------------------------


@pytest.mark.parametrize(
    ("zone", "after", "expected"),
    [
        # Berlin 02:00 on Saturday 2026-03-28 is 01:00 UTC; on 2026-04-04 it is 00:00 UTC.
        (
            "Europe/Berlin",
            _utc(2026, 3, 20),
            [_utc(2026, 3, 21, 1), _utc(2026, 3, 28, 1), _utc(2026, 4, 4, 0)],
        ),
        (
            "Europe/Berlin",
            _utc(2026, 10, 20),
            [_utc(2026, 10, 24, 0), _utc(2026, 10, 31, 1), _utc(2026, 11, 7, 1)],
        ),
        # New York 02:00 EST is 07:00 UTC, 02:00 EDT is 06:00 UTC.
        (
            "America/New_York",
            _utc(2026, 3, 1),
            [_utc(2026, 3, 7, 7), _utc(2026, 3, 14, 6), _utc(2026, 3, 21, 6)],
        ),
        (
            "America/New_York",
            _utc(2026, 10, 25),
            [_utc(2026, 10, 31, 6), _utc(2026, 11, 7, 7), _utc(2026, 11, 14, 7)],
        ),
        # Sydney: 02:00 AEDT (+11) is 15:00 UTC the day before, 02:00 AEST (+10) 16:00.
        (
            "Australia/Sydney",
            _utc(2026, 3, 27),
            [_utc(2026, 3, 27, 15), _utc(2026, 4, 3, 15), _utc(2026, 4, 10, 16)],
        ),
        (
            "Australia/Sydney",
            _utc(2026, 9, 25),
            [_utc(2026, 9, 25, 16), _utc(2026, 10, 2, 16), _utc(2026, 10, 9, 15)],
        ),
        # Kolkata has no DST: 02:00 IST is 20:30 UTC the day before, all year.
        (
            "Asia/Kolkata",
            _utc(2026, 3, 24),
            [_utc(2026, 3, 27, 20, 30), _utc(2026, 4, 3, 20, 30), _utc(2026, 4, 10, 20, 30)],
        ),
        (
            "Asia/Kolkata",
            _utc(2026, 10, 20),
            [_utc(2026, 10, 23, 20, 30), _utc(2026, 10, 30, 20, 30), _utc(2026, 11, 6, 20, 30)],
        ),
    ],
)
@pytest.mark.parametrize(
    "rule", [SATURDAY_2AM, "FREQ=WEEKLY;BYDAY=SA;BYHOUR=2;BYMINUTE=0"], ids=["cron", "rrule"]
)
def test_saturday_2am_stays_2am_local_across_dst(
    rule: str, zone: str, after: datetime, expected: list[datetime]
) -> None:
    openings = next_openings(_schedule(_window(rule, 120, zone)), after, 3)
    assert [o.start for o in openings] == expected
    for opening in openings:
        assert opening.end is not None and opening.start is not None
        assert opening.end - opening.start == timedelta(hours=2)
        local = opening.local_start
        assert local is not None and (local.hour, local.minute) == (2, 0)
        assert local.tzinfo == ZoneInfo(zone) and opening.timezone == zone


@pytest.mark.parametrize(
    ("zone", "rule", "after", "expected_start", "expected_local"),
    [
        # 02:30 does not exist on the spring-forward night: the window opens at
        # the end of the gap, 03:00 local, and keeps its full hour.
        ("Europe/Berlin", "30 2 * * 0", _utc(2026, 3, 28), _utc(2026, 3, 29, 1), (3, 0)),
        ("America/New_York", "30 2 * * 0", _utc(2026, 3, 7), _utc(2026, 3, 8, 7), (3, 0)),
        (
            "Australia/Sydney",
            "FREQ=WEEKLY;BYDAY=SU;BYHOUR=2;BYMINUTE=30",
            _utc(2026, 10, 1),
            _utc(2026, 10, 3, 16),
            (3, 0),
        ),
        # 01:30 happens twice when New York falls back: the first one (EDT) counts.
        ("America/New_York", "30 1 * * 0", _utc(2026, 10, 31), _utc(2026, 11, 1, 5, 30), (1, 30)),
        # Berlin repeats 02:00-03:00 on 25 October: 02:30 CEST, not 02:30 CET.
        ("Europe/Berlin", "30 2 * * 0", _utc(2026, 10, 24), _utc(2026, 10, 25, 0, 30), (2, 30)),
        # Sydney repeats 02:00-03:00 on 5 April: 02:30 AEDT (+11).
        ("Australia/Sydney", "30 2 * * 0", _utc(2026, 4, 1), _utc(2026, 4, 4, 15, 30), (2, 30)),
    ],
)
def test_start_in_a_gap_or_a_repeated_hour(
    zone: str,
    rule: str,
    after: datetime,
    expected_start: datetime,
    expected_local: tuple[int, int],
) -> None:
    first, second = next_openings(_schedule(_window(rule, 60, zone)), after, 2)
    assert first.start == expected_start
    assert first.end == expected_start + timedelta(hours=1)
    assert first.local_start is not None
    assert (first.local_start.hour, first.local_start.minute) == expected_local
    # the repeated time opens once, and the next week is back to normal
    assert second.start is not None and second.start - expected_start > timedelta(days=6)


def test_the_week_around_the_gap_keeps_the_wall_clock_time() -> None:
    schedule = _schedule(_window("30 2 * * 0", 60, "Europe/Berlin"))
    assert _starts(schedule, _utc(2026, 3, 21), 3) == [
        _utc(2026, 3, 22, 1, 30),  # 02:30 CET
        _utc(2026, 3, 29, 1, 0),  # 03:00 CEST: the gap's end
        _utc(2026, 4, 5, 0, 30),  # 02:30 CEST
    ]


@pytest.mark.parametrize(
    ("rule", "zone", "after", "expected"),
    [
        # Hourly starts on the fall-back night: 02:00 CEST then 03:00 CET, so
        # no start at 01:00 UTC (the repeated 02:00 is taken once).
        (
            "0 1-4 25 10 *",
            "Europe/Berlin",
            _utc(2026, 10, 24, 22),
            [_utc(2026, 10, 24, 23), _utc(2026, 10, 25, 0), _utc(2026, 10, 25, 2)],
        ),
        # Starts in the spring-forward gap (02:00, 02:30) collapse onto 03:00 CEST.
        (
            "*/30 2-3 29 3 *",
            "Europe/Berlin",
            _utc(2026, 3, 28, 23),
            [_utc(2026, 3, 29, 1, 0), _utc(2026, 3, 29, 1, 30)],
        ),
    ],
)
def test_several_starts_a_day_across_dst(
    rule: str, zone: str, after: datetime, expected: list[datetime]
) -> None:
    schedule = _schedule(_window(rule, 15, zone))
    assert _starts(schedule, after, len(expected) + 1)[: len(expected)] == expected


@pytest.mark.parametrize(
    ("zone", "after", "start", "end", "local_end"),
    [
        # 23:00 CET + 4 real hours, across midnight and spring forward: 04:00 CEST.
        ("Europe/Berlin", _utc(2026, 3, 27), _utc(2026, 3, 28, 22), _utc(2026, 3, 29, 2), 4),
        # 23:00 CEST + 4 real hours, across fall back: 02:00 CET.
        ("Europe/Berlin", _utc(2026, 10, 23), _utc(2026, 10, 24, 21), _utc(2026, 10, 25, 1), 2),
        # 23:00 EST = 04:00 UTC; + 4 hours = 08:00 UTC = 04:00 EDT.
        ("America/New_York", _utc(2026, 3, 6), _utc(2026, 3, 8, 4), _utc(2026, 3, 8, 8), 4),
        # 23:00 AEDT = 12:00 UTC; + 4 hours = 16:00 UTC = 02:00 AEST (first pass of 02:00).
        ("Australia/Sydney", _utc(2026, 4, 1), _utc(2026, 4, 4, 12), _utc(2026, 4, 4, 16), 2),
    ],
)
def test_window_across_midnight_and_dst_lasts_real_hours(
    zone: str, after: datetime, start: datetime, end: datetime, local_end: int
) -> None:
    opening = next_openings(_schedule(_window("0 23 * * 6", 240, zone)), after, 1)[0]
    assert (opening.start, opening.end) == (start, end)
    assert opening.local_end is not None and opening.local_end.hour == local_end
    assert opening.local_start is not None and opening.local_start.hour == 23


# -- cron and RRULE ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cron", "rrule", "per_year"),
    [
        (SATURDAY_2AM, "FREQ=WEEKLY;BYDAY=SA;BYHOUR=2;BYMINUTE=0", 52),
        ("30 1 1,15 * *", "FREQ=MONTHLY;BYMONTHDAY=1,15;BYHOUR=1;BYMINUTE=30", 24),
        (
            "0 */8 * * mon-fri",
            "FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=0,8,16;BYMINUTE=0",
            261 * 3,
        ),
        ("0 3 * JAN,jul SUN", "FREQ=WEEKLY;BYMONTH=1,7;BYDAY=SU;BYHOUR=3;BYMINUTE=0", 8),
        ("15 2 * * 0,7", "RRULE:FREQ=WEEKLY;BYDAY=SU;BYHOUR=2;BYMINUTE=15", 52),
        ("@monthly", "FREQ=MONTHLY;BYMONTHDAY=1", 12),
        ("0 4 28-31 * *", "FREQ=DAILY;BYMONTHDAY=28,29,30,31;BYHOUR=4", 4 * 7 + 3 * 4 + 1),
        # both day fields restricted: the 1st of the month or any Monday
        ("0 5 1 * 1", "FREQ=DAILY;BYMONTHDAY=1;BYHOUR=5;BYMINUTE=0\n", 0),
    ],
)
@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York", "Australia/Sydney"])
def test_cron_and_equivalent_rrule_open_identically_over_a_year(
    cron: str, rrule: str, per_year: int, zone: str
) -> None:
    after, year_end = _utc(2026, 1, 1), _utc(2027, 1, 1)

    def year(schedule: Schedule) -> list[tuple[datetime | None, datetime | None]]:
        return [
            (o.start, o.end)
            for o in next_openings(schedule, after, 1000)
            if o.start is not None and o.start < year_end
        ]

    from_cron = year(_schedule(_window(cron, 60, zone)))
    if per_year == 0:
        # "0 5 1 * 1" is the 1st OR Monday; the RRULE is only the 1st: a subset.
        from_rrule = year(_schedule(_window(rrule, 60, zone)))
        assert set(from_rrule) < set(from_cron)
        assert len(from_cron) == 12 + 52 - 1  # 1 June 2026 is a Monday
        return
    assert from_cron == year(_schedule(_window(rrule, 60, zone)))
    assert len(from_cron) == per_year


@pytest.mark.parametrize(
    "rule",
    [
        "DTSTART:20250104T020000\nRRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=SA,SU;BYHOUR=2,4",
        "DTSTART:20250101T000000\nRRULE:FREQ=MONTHLY;BYDAY=-1SU;BYHOUR=3",
        "DTSTART:20250101T000000\nRRULE:FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1;BYHOUR=22",
        "DTSTART:20250101T000000\nRRULE:FREQ=MONTHLY;INTERVAL=3;BYMONTHDAY=-1,15",
        "DTSTART:20250101T000000\nRRULE:FREQ=YEARLY;BYWEEKNO=20;BYDAY=MO,TH",
        "DTSTART:20250101T000000\nRRULE:FREQ=YEARLY;BYYEARDAY=1,100,-1;BYHOUR=5",
        "DTSTART:20250131T010000\nRRULE:FREQ=MONTHLY",
        "DTSTART:20250103T010000\nRRULE:FREQ=DAILY;INTERVAL=3;BYDAY=MO,FR",
        "DTSTART:20250603T010000\nRRULE:FREQ=DAILY;COUNT=40",
        "DTSTART:20250520T011700\nRRULE:FREQ=MINUTELY;INTERVAL=61;COUNT=1000",
        "DTSTART:20250103T010000\nRRULE:FREQ=DAILY;UNTIL=20251110T010000",
        "DTSTART:20250103T011700\nRRULE:FREQ=HOURLY;INTERVAL=7;BYHOUR=1,2,3,4",
        "DTSTART:20250103T011700\nRRULE:FREQ=MINUTELY;INTERVAL=97;BYHOUR=3;BYDAY=TU",
        "DTSTART:20250101T000000\nRRULE:FREQ=MONTHLY;BYMONTHDAY=13;BYDAY=FR",
    ],
)
def test_rrule_starts_match_dateutil(rule: str) -> None:
    # In UTC there is no DST, so wall-clock starts are the instants themselves.
    after = _utc(2025, 6, 1)
    until = after + timedelta(days=365)
    expected = [
        moment.replace(tzinfo=UTC)
        for moment in rrulestr(rule).between(after.replace(tzinfo=None), until.replace(tzinfo=None))
    ]
    found = [s for s in _starts(_schedule(_window(rule, 1, "UTC")), after, 1000) if s and s < until]
    assert found == expected
    assert found


def test_dtstart_and_until() -> None:
    berlin = "Europe/Berlin"
    every_other = _window("DTSTART:20260103T020000\nRRULE:FREQ=WEEKLY;INTERVAL=2", 60, berlin)
    # nothing before DTSTART; then every other Saturday at 02:00 CET
    assert _starts(_schedule(every_other), _utc(2025, 12, 1), 3) == [
        _utc(2026, 1, 3, 1),
        _utc(2026, 1, 17, 1),
        _utc(2026, 1, 31, 1),
    ]
    weekly = "DTSTART:20260103T020000\nRRULE:FREQ=WEEKLY;UNTIL="
    # UNTIL in UTC is an instant (02:00 CET on 17 January is 01:00 UTC: included) ...
    in_utc = _window(weekly + "20260117T010000Z", 60, berlin)
    assert len(next_openings(_schedule(in_utc), _utc(2026, 1, 1), 10)) == 3
    # ... without Z it is local wall-clock time.
    local = _window(weekly + "20260117T015959", 60, berlin)
    assert len(next_openings(_schedule(local), _utc(2026, 1, 1), 10)) == 2
    # COUNT counts from DTSTART, wherever the search begins
    three = _window("DTSTART:20260321T020000\nRRULE:FREQ=WEEKLY;COUNT=3", 60, berlin)
    assert _starts(_schedule(three), _utc(2026, 3, 22), 10) == [
        _utc(2026, 3, 28, 1),
        _utc(2026, 4, 4, 0),
    ]


# -- blackouts -----------------------------------------------------------------------

BERLIN_SATURDAY = _window("0 2 * * 6", 240, "Europe/Berlin")  # 02:00-06:00 local


@pytest.mark.parametrize(
    ("blackouts", "after", "expected"),
    [
        # 03:00-04:00 CEST on 6 June splits that window in two.
        (
            (Blackout.between(_utc(2026, 6, 6, 1), _utc(2026, 6, 6, 2), "db migration"),),
            _utc(2026, 6, 5),
            [
                (_utc(2026, 6, 6, 0), _utc(2026, 6, 6, 1)),
                (_utc(2026, 6, 6, 2), _utc(2026, 6, 6, 4)),
                (_utc(2026, 6, 13, 0), _utc(2026, 6, 13, 4)),
            ],
        ),
        # A year-end freeze removes 19 and 26 December and 2 January.
        (
            (
                Blackout.between(
                    datetime(2026, 12, 19, tzinfo=ZoneInfo("Europe/Berlin")),
                    datetime(2027, 1, 4, tzinfo=ZoneInfo("Europe/Berlin")),
                    "year-end freeze",
                ),
            ),
            _utc(2026, 12, 10),
            [
                (_utc(2026, 12, 12, 1), _utc(2026, 12, 12, 5)),
                (_utc(2027, 1, 9, 1), _utc(2027, 1, 9, 5)),
            ],
        ),
        # Exactly covering one window removes it; a freeze that starts as a window
        # ends, or ends as one starts, takes nothing.
        (
            (
                Blackout.between(_utc(2026, 6, 6, 0), _utc(2026, 6, 6, 4)),
                Blackout.between(_utc(2026, 6, 13, 4), _utc(2026, 6, 14)),
                Blackout.between(_utc(2026, 6, 19), _utc(2026, 6, 20, 0)),
            ),
            _utc(2026, 6, 5),
            [
                (_utc(2026, 6, 13, 0), _utc(2026, 6, 13, 4)),
                (_utc(2026, 6, 20, 0), _utc(2026, 6, 20, 4)),
            ],
        ),
        # A recurring freeze, the first Saturday of each month (all day, New York
        # time: 06:00 Berlin to 06:00 the next day), cuts 4 July down to nothing
        # and leaves 11 July alone.
        (
            (
                Blackout.recurring(
                    Recurrence.rrule("FREQ=MONTHLY;BYDAY=1SA"),
                    timedelta(days=1),
                    "America/New_York",
                    "monthly freeze",
                ),
            ),
            _utc(2026, 7, 3),
            [
                (_utc(2026, 7, 4, 0), _utc(2026, 7, 4, 4)),  # New York midnight is 04:00 UTC
                (_utc(2026, 7, 11, 0), _utc(2026, 7, 11, 4)),
            ],
        ),
        # Days 1-7 of every month, all day UTC.
        (
            (Blackout.recurring(Recurrence.cron("0 0 1-7 * *"), timedelta(days=1), "UTC"),),
            _utc(2026, 7, 3),
            [(_utc(2026, 7, 11, 0), _utc(2026, 7, 11, 4))],
        ),
        # Cron's "1-7 and Saturday" is 1-7 OR Saturday (both day fields restricted):
        # every Saturday is frozen.
        (
            (Blackout.recurring(Recurrence.cron("0 0 1-7 * 6"), timedelta(days=1), "UTC"),),
            _utc(2026, 7, 3),
            [],
        ),
    ],
)
def test_blackouts_split_and_remove_windows(
    blackouts: tuple[Blackout, ...],
    after: datetime,
    expected: list[tuple[datetime, datetime]],
) -> None:
    schedule = _schedule(BERLIN_SATURDAY, blackouts=blackouts)
    assert _spans(next_openings(schedule, after, len(expected) or 3)) == expected


def test_overlapping_and_touching_windows_form_one_opening() -> None:
    schedule = _schedule(
        _window("0 2 * * 6", 120, "Europe/Berlin"),  # 02:00-04:00
        _window("0 3 * * 6", 120, "Europe/Berlin"),  # 03:00-05:00
        _window("FREQ=WEEKLY;BYDAY=SA;BYHOUR=3", 60, "UTC"),  # 05:00-06:00 CEST touches
        _window("FREQ=WEEKLY;BYDAY=SA;BYHOUR=5", 60, "UTC"),  # 07:00 CEST: apart
    )
    assert _spans(next_openings(schedule, _utc(2026, 6, 1), 2)) == [
        (_utc(2026, 6, 6, 0), _utc(2026, 6, 6, 4)),
        (_utc(2026, 6, 6, 5), _utc(2026, 6, 6, 6)),
    ]


# -- empty schedules, boundaries, the current window ---------------------------------


def test_empty_schedule_is_always_open() -> None:
    schedule = Schedule()
    for at in (_utc(1990, 1, 1), _utc(2026, 3, 29, 1), _utc(2031, 12, 31, 23, 59, 59)):
        assert is_open(schedule, at) and may_start(schedule, at)
    assert current_window(schedule, _utc(2026, 1, 1)) == Interval(None, None)
    assert next_openings(schedule, _utc(2026, 1, 1)) == [Interval(None, None)]


def test_empty_schedule_with_blackouts_is_open_between_them() -> None:
    freeze = Blackout.between(_utc(2026, 12, 19), _utc(2027, 1, 4))
    schedule = Schedule(blackouts=(freeze,))
    assert is_open(schedule, _utc(2026, 12, 18, 23, 59))
    assert not is_open(schedule, _utc(2026, 12, 19))
    assert not may_start(schedule, _utc(2027, 1, 3, 23, 59, 59))
    assert is_open(schedule, _utc(2027, 1, 4))
    assert current_window(schedule, _utc(2026, 12, 1)) == Interval(None, _utc(2026, 12, 19))
    assert current_window(schedule, _utc(2026, 12, 20)) is None
    assert _spans(next_openings(schedule, _utc(2026, 12, 1), 5)) == [
        (None, _utc(2026, 12, 19)),
        (_utc(2027, 1, 4), None),
    ]


@pytest.mark.parametrize(
    ("at", "open_"),
    [
        (_utc(2026, 3, 28, 0, 59, 59) + timedelta(microseconds=999_999), False),
        (_utc(2026, 3, 28, 1), True),  # start inclusive: 02:00 CET
        (_utc(2026, 3, 28, 1, 29, 59), True),
        (_utc(2026, 3, 28, 1, 30), False),  # blackout start inclusive
        (_utc(2026, 3, 28, 1, 59, 59), False),
        (_utc(2026, 3, 28, 2), True),  # blackout end exclusive
        (_utc(2026, 3, 28, 2, 59, 59) + timedelta(microseconds=999_999), True),
        (_utc(2026, 3, 28, 3), False),  # end exclusive: 04:00 CET
        # an aware datetime in another zone means the same instant
        (datetime(2026, 3, 28, 2, 15, tzinfo=ZoneInfo("Europe/Berlin")), True),
        (datetime(2026, 3, 27, 20, 59, tzinfo=ZoneInfo("America/New_York")), False),
        (datetime(2026, 3, 27, 21, 0, tzinfo=ZoneInfo("America/New_York")), True),  # EDT
    ],
)
def test_boundaries(at: datetime, open_: bool) -> None:
    schedule = _schedule(
        _window(SATURDAY_2AM, 120, "Europe/Berlin"),
        blackouts=(Blackout.between(_utc(2026, 3, 28, 1, 30), _utc(2026, 3, 28, 2)),),
    )
    assert is_open(schedule, at) is open_
    assert may_start(schedule, at) is open_
    assert (current_window(schedule, at) is not None) is open_


def test_current_window_is_the_opening_around_the_instant() -> None:
    schedule = _schedule(
        _window(SATURDAY_2AM, 120, "Europe/Berlin"),
        blackouts=(Blackout.between(_utc(2026, 3, 28, 1, 30), _utc(2026, 3, 28, 2)),),
    )
    first = current_window(schedule, _utc(2026, 3, 28, 1, 10))
    assert first == Interval(_utc(2026, 3, 28, 1), _utc(2026, 3, 28, 1, 30), "Europe/Berlin")
    assert first.contains(_utc(2026, 3, 28, 1)) and not first.contains(_utc(2026, 3, 28, 1, 30))
    second = current_window(schedule, _utc(2026, 3, 28, 2, 30))
    assert second == Interval(_utc(2026, 3, 28, 2), _utc(2026, 3, 28, 3), "Europe/Berlin")
    assert second.local_start == datetime(2026, 3, 28, 3, tzinfo=ZoneInfo("Europe/Berlin"))
    # in progress at `after`: listed first, with its real start
    assert _spans(next_openings(schedule, _utc(2026, 3, 28, 2, 30), 2)) == [
        (_utc(2026, 3, 28, 2), _utc(2026, 3, 28, 3)),
        (_utc(2026, 4, 4, 0), _utc(2026, 4, 4, 2)),
    ]
    assert second.as_dict() == {
        "start": "2026-03-28T02:00:00+00:00",
        "end": "2026-03-28T03:00:00+00:00",
        "local_start": "2026-03-28T03:00:00+01:00",
        "local_end": "2026-03-28T04:00:00+01:00",
        "timezone": "Europe/Berlin",
    }


def test_windows_that_chain_forever_are_open_beyond_the_search() -> None:
    # Every minute for a minute: always open; the search stops, it does not loop.
    schedule = _schedule(_window("* * * * *", 1, "UTC"))
    assert is_open(schedule, _utc(2026, 5, 5, 5, 5, 5))
    assert current_window(schedule, _utc(2026, 5, 5)) == Interval(None, None)
    daily = _schedule(_window("0 0 * * *", 24 * 60, "Asia/Kolkata"))
    assert next_openings(daily, _utc(2026, 5, 5)) == [Interval(None, None, "Asia/Kolkata")]


# -- bounded searching ---------------------------------------------------------------


@pytest.mark.parametrize(
    "rule",
    [
        "0 2 30 2 *",
        "0 2 31 4,6,9,11 *",
        "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30",
        "FREQ=MINUTELY;BYMONTH=2;BYMONTHDAY=31",
        "FREQ=YEARLY;BYMONTH=4;BYMONTHDAY=31",
        "DTSTART:20200101T020000\nRRULE:FREQ=DAILY;UNTIL=20210101T000000",
        "DTSTART:20200101T020000\nRRULE:FREQ=DAILY;COUNT=3",
    ],
)
def test_a_rule_that_never_occurs_yields_nothing(rule: str) -> None:
    schedule = _schedule(_window(rule, 60, "Europe/Berlin"))
    assert next_openings(schedule, _utc(2026, 1, 1), 5) == []
    assert not is_open(schedule, _utc(2026, 2, 28, 1, 30))
    assert current_window(schedule, _utc(2026, 2, 28, 1, 30)) is None


def test_search_gives_up_at_the_horizon_and_returns_what_it_found() -> None:
    # 29 February: 2028 is within five years of March 2026, 2032 is not.
    leap_day = _schedule(_window("0 2 29 2 *", 60, "Europe/Berlin"))
    assert _starts(leap_day, _utc(2026, 3, 1), 3) == [_utc(2028, 2, 29, 1)]


# -- validation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda s, at: is_open(s, at),
        lambda s, at: may_start(s, at),
        lambda s, at: current_window(s, at),
        lambda s, at: next_openings(s, at, 3),
        lambda s, at: Blackout.between(at, at + timedelta(hours=1)),
        lambda s, at: Interval(at, None),
    ],
)
def test_naive_datetimes_are_refused(call: object) -> None:
    schedule = _schedule(BERLIN_SATURDAY)
    with pytest.raises(InvalidSchedule, match="has no time zone") as info:
        call(schedule, datetime(2026, 3, 28, 2))  # type: ignore[operator]
    assert isinstance(info.value, InvalidInput)
    assert info.value.http_status == 422


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("0 25 * * *", "hour field '25': 25 is out of range 0-23"),
        ("0 2 * *", "4 field"),
        ("0 2 * * 6 *", "6 field"),
        ("0 2 * * FUN", "day-of-week field 'FUN'"),
        ("0 2 * 13 *", "month field '13'"),
        ("0 2 32 * *", "day-of-month field '32'"),
        ("*/0 * * * *", "step '0'"),
        ("5-1 * * * *", "runs backwards"),
        ("1/5 * * * *", "needs a range"),
        ("0 2 * * 8", "out of range 0-7"),
        ("0,,5 2 * * *", "empty item"),
        ("0 -2 * * *", "minute|hour"),
        ("@reboot", "unknown cron macro"),
        ("0 ２ * * *", "not a number"),
    ],
)
def test_invalid_cron_is_refused_naming_the_field(text: str, error: str) -> None:
    with pytest.raises(InvalidSchedule, match=error) as info:
        Recurrence.cron(text)
    assert info.value.field == "cron"
    assert str(info.value).startswith("cron: ")


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("FREQ=FORTNIGHTLY", "FREQ=FORTNIGHTLY is not one of"),
        ("BYDAY=SA;BYHOUR=2", "FREQ is missing"),
        ("FREQ=SECONDLY", "SECONDLY is not supported"),
        ("FREQ=WEEKLY;BYDAY=XX", "BYDAY value 'XX'"),
        ("FREQ=DAILY;BYHOUR=24", "BYHOUR value '24' is out of range"),
        ("FREQ=MONTHLY;BYMONTHDAY=0", "BYMONTHDAY value '0' is out of range"),
        ("FREQ=DAILY;FOO=1", "unknown part FOO"),
        ("FREQ=DAILY;FREQ=WEEKLY", "FREQ is given twice"),
        ("FREQ=DAILY;BYHOUR", "not NAME=VALUE"),
        ("FREQ=WEEKLY;BYDAY=1SA", "ordinal"),
        ("FREQ=WEEKLY;BYMONTHDAY=1", "BYMONTHDAY cannot be used with FREQ=WEEKLY"),
        ("FREQ=MONTHLY;BYWEEKNO=1", "BYWEEKNO needs FREQ=YEARLY"),
        ("FREQ=DAILY;BYSETPOS=1", "BYSETPOS needs another"),
        ("FREQ=WEEKLY;BYHOUR=2", "FREQ=WEEKLY needs BYDAY or a DTSTART"),
        ("FREQ=YEARLY;BYMONTH=3", "FREQ=YEARLY needs a day"),
        ("FREQ=WEEKLY;BYDAY=SA;COUNT=3", "COUNT needs a DTSTART"),
        ("FREQ=WEEKLY;BYDAY=SA;INTERVAL=2", "INTERVAL=2 needs a DTSTART"),
        ("FREQ=WEEKLY;BYDAY=SA;INTERVAL=0", "INTERVAL=0 must be a whole number"),
        ("FREQ=DAILY;UNTIL=20261231", "UNTIL '20261231' must be a date-time"),
        ("FREQ=DAILY;UNTIL=20260231T000000", "not a valid date-time"),
        ("DTSTART;TZID=Europe/Berlin:20260103T020000\nRRULE:FREQ=WEEKLY", "no parameters"),
        ("DTSTART:20260103T020000Z\nRRULE:FREQ=WEEKLY", "must be local time"),
        ("DTSTART:18000103T020000\nRRULE:FREQ=WEEKLY", "outside the supported years"),
        ("DTSTART:20260103T020000\nRRULE:FREQ=WEEKLY;COUNT=2;UNTIL=20270101T000000", "exclude"),
        ("FREQ=DAILY\nEXDATE:20260101T000000", "unsupported line"),
        ("FREQ=DAILY\nRRULE:FREQ=WEEKLY;BYDAY=SA", "more than one RRULE"),
        ("DTSTART:20260103T020000", "no rule found"),
    ],
)
def test_invalid_rrule_is_refused_naming_the_field(text: str, error: str) -> None:
    with pytest.raises(InvalidSchedule, match=error) as info:
        Recurrence.rrule(text)
    assert info.value.field == "rrule"


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "", "localtime", "Europe/Berln", 1])
def test_invalid_zone_is_refused(zone: object) -> None:
    with pytest.raises(InvalidSchedule, match="time zone") as info:
        MaintenanceWindow(Recurrence.cron(SATURDAY_2AM), timedelta(hours=1), zone)  # type: ignore[arg-type]
    assert info.value.field == "timezone"
    with pytest.raises(InvalidSchedule) as info:
        parse_window({"cron": SATURDAY_2AM, "duration_minutes": 60, "timezone": zone})
    assert info.value.field == "timezone"


@pytest.mark.parametrize(
    "duration",
    [
        timedelta(0),
        timedelta(minutes=-5),
        timedelta(seconds=90),
        timedelta(days=7, minutes=1),
    ],
)
def test_window_duration_must_be_whole_minutes_up_to_a_week(duration: timedelta) -> None:
    with pytest.raises(InvalidSchedule, match="whole number of minutes") as info:
        MaintenanceWindow(Recurrence.cron(SATURDAY_2AM), duration, "UTC")
    assert info.value.field == "duration"


@pytest.mark.parametrize(
    ("data", "field", "error"),
    [
        ({"cron": SATURDAY_2AM, "duration_minutes": 0, "timezone": "UTC"}, "duration_minutes", ""),
        (
            {"cron": SATURDAY_2AM, "duration_minutes": True, "timezone": "UTC"},
            "duration_minutes",
            "",
        ),
        (
            {"cron": SATURDAY_2AM, "duration_minutes": "120", "timezone": "UTC"},
            "duration_minutes",
            "",
        ),
        (
            {"cron": SATURDAY_2AM, "duration_minutes": 10081, "timezone": "UTC"},
            "duration_minutes",
            "",
        ),
        ({"cron": SATURDAY_2AM, "duration_minutes": 60}, "timezone", "required"),
        ({"cron": "0 2 * *", "duration_minutes": 60, "timezone": "UTC"}, "cron", "4 field"),
        ({"rrule": "FREQ=NEVER", "duration_minutes": 60, "timezone": "UTC"}, "rrule", "FREQ"),
        ({"cron": 5, "duration_minutes": 60, "timezone": "UTC"}, "cron", "must be text"),
        ({"duration_minutes": 60, "timezone": "UTC"}, None, "exactly one of 'rrule' or 'cron'"),
        (
            {
                "cron": SATURDAY_2AM,
                "rrule": "FREQ=DAILY",
                "duration_minutes": 60,
                "timezone": "UTC",
            },
            None,
            "exactly one",
        ),
        ({"cron": SATURDAY_2AM, "duration": 60, "timezone": "UTC"}, None, "unknown key"),
        ("{not json", None, "JSON object"),
        ("[1, 2]", None, "must be a mapping"),
    ],
)
def test_parse_window_names_the_bad_field(data: object, field: str | None, error: str) -> None:
    error = error or "whole number of minutes from 1 to 10080"
    with pytest.raises(InvalidSchedule, match=error) as info:
        parse_window(data)  # type: ignore[arg-type]
    assert info.value.field == field


def test_blackout_validation() -> None:
    with pytest.raises(InvalidSchedule, match="must be after start") as info:
        Blackout.between(_utc(2026, 1, 2), _utc(2026, 1, 1))
    assert info.value.field == "end"
    with pytest.raises(InvalidSchedule, match="not a mix"):
        Blackout(start=_utc(2026, 1, 1), end=_utc(2026, 1, 2), timezone="UTC")
    with pytest.raises(InvalidSchedule, match="not a mix"):
        Blackout(start=_utc(2026, 1, 1))
    with pytest.raises(InvalidSchedule, match="366 days"):
        Blackout.recurring(Recurrence.cron("0 0 15 12 *"), timedelta(days=367), "UTC")
    with pytest.raises(InvalidSchedule, match="printable") as info:
        Blackout.between(_utc(2026, 1, 1), _utc(2026, 1, 2), "freeze\x00")
    assert info.value.field == "reason"
    # a long yearly freeze is fine
    Blackout.recurring(Recurrence.cron("0 0 15 12 *"), timedelta(days=21), "Europe/Berlin")


def test_schedule_and_counts_are_checked() -> None:
    with pytest.raises(InvalidSchedule) as info:
        Schedule(windows=(BERLIN_SATURDAY, "0 2 * * 6"))  # type: ignore[arg-type]
    assert info.value.field == "windows[1]"
    with pytest.raises(InvalidSchedule) as info:
        next_openings(Schedule(), _utc(2026, 1, 1), 0)
    assert info.value.field == "count"
    with pytest.raises(InvalidSchedule, match="supported years"):
        is_open(Schedule(), datetime(9999, 1, 1, tzinfo=UTC))


# -- storage form --------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        {"cron": "0 2 * * 6", "duration_minutes": 120, "timezone": "Europe/Berlin"},
        {
            "rrule": "FREQ=WEEKLY;BYDAY=SA;BYHOUR=2;BYMINUTE=0",
            "duration_minutes": 120,
            "timezone": "Europe/Berlin",
        },
        {
            "rrule": "DTSTART:20260103T020000\nRRULE:FREQ=MONTHLY;BYDAY=1SA",
            "duration_minutes": 10080,
            "timezone": "Australia/Sydney",
        },
    ],
)
def test_window_round_trip(data: dict[str, object]) -> None:
    window = parse_window(data)
    assert window.as_dict() == data
    assert parse_window(window.as_dict()) == window
    assert parse_window(json.dumps(data)) == window


def test_schedule_round_trip_and_nested_errors() -> None:
    data = {
        "windows": [
            {"cron": "0 2 * * 6", "duration_minutes": 120, "timezone": "Europe/Berlin"},
            {"rrule": "FREQ=DAILY;BYHOUR=3", "duration_minutes": 30, "timezone": "Asia/Kolkata"},
        ],
        "blackouts": [
            {
                "start": "2026-12-18T23:00:00+00:00",
                "end": "2027-01-03T23:00:00+00:00",
                "reason": "year-end freeze",
            },
            {
                "cron": "0 0 1-7 * 6",
                "duration_minutes": 1440,
                "timezone": "UTC",
                "reason": "first Saturday",
            },
        ],
    }
    schedule = parse_schedule(data)
    assert schedule.as_dict() == data
    assert parse_schedule(json.dumps(schedule.as_dict())) == schedule
    # an offset other than UTC is stored in UTC
    berlin = parse_blackout({"start": "2026-12-19T00:00:00+01:00", "end": "2027-01-04T00:00+01:00"})
    assert berlin.start == _utc(2026, 12, 18, 23)
    assert berlin.as_dict()["start"] == "2026-12-18T23:00:00+00:00"

    bad = json.loads(json.dumps(data))
    bad["windows"][1]["rrule"] = "FREQ=DAILY;BYHOUR=99"
    with pytest.raises(InvalidSchedule, match="BYHOUR") as info:
        parse_schedule(bad)
    assert info.value.field == "windows[1].rrule"
    assert str(info.value).startswith("windows[1].rrule: ")
    bad = json.loads(json.dumps(data))
    bad["blackouts"][0]["start"] = "2026-12-19T00:00:00"
    with pytest.raises(InvalidSchedule, match="no time zone") as info:
        parse_schedule(bad)
    assert info.value.field == "blackouts[0].start"
    with pytest.raises(InvalidSchedule, match="unknown key") as info:
        parse_schedule({"windows": [], "blackout": []})
