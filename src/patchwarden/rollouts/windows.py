"""Maintenance windows and blackouts: when a rollout may start work (pure).

A :class:`MaintenanceWindow` opens at every start of its recurrence and stays
open for its duration. The recurrence is an RFC 5545 RRULE
(``FREQ=WEEKLY;BYDAY=SA;BYHOUR=2;BYMINUTE=0``, optionally after a line
``DTSTART:20260103T020000`` in local time) or a 5-field cron expression
(``0 2 * * 6``). A :class:`Blackout` (change freeze) is an absolute interval or
a recurrence with a duration; blackouts override windows. A :class:`Schedule`
holds both. Every interval is half-open: the start is inside, the end is not.

Time, precisely:

* Starts are wall-clock times in the window's IANA zone: "02:00 every
  Saturday in Europe/Berlin" is 02:00 local in winter and in summer (01:00 UTC
  on 2026-03-28, 00:00 UTC on 2026-04-04).
* A start the zone skips (02:30 on a spring-forward night) opens the window at
  the first instant that exists after it, the end of the gap (03:00 local);
  the window keeps its full duration from there.
* A start that occurs twice (01:30 on a fall-back night in New York) is
  taken once, at its first occurrence (the earlier instant, before the
  change). Rules with several starts a day follow the same two rules, so an
  hourly rule has no start in the repeated hour's second pass, and starts in a
  gap collapse into one.
* Durations are real elapsed time: a 4-hour window from 23:00 on the
  spring-forward night ends at 04:00 local, on the fall-back night at 02:00.
* RRULE UNTIL is local wall-clock time (``UNTIL=20261231T235959``) or, with a
  trailing Z, a UTC instant.

A schedule without windows may run at any time except during blackouts.
The open set is the union of all window occurrences minus the union of all
blackouts; overlapping or touching windows form one opening.

Searching is bounded: no answer looks further than :data:`SEARCH_HORIZON`
(5 years) from the instant asked about, nor past :data:`MAX_STARTS_PER_SEARCH`
starts of one rule (rules that start every minute). A rule that never occurs
(``0 2 30 2 *``, 30 February) just yields nothing. An :class:`Interval` whose
start or end lies beyond what was searched has None there: the opening is in
progress since before / still open after the search (e.g. an empty schedule).

RRULE support (RFC 5545, as python-dateutil realises it): FREQ MINUTELY to
YEARLY, INTERVAL, COUNT, UNTIL, BYMONTH, BYWEEKNO, BYYEARDAY, BYMONTHDAY,
BYDAY (with ordinals in MONTHLY/YEARLY), BYHOUR, BYMINUTE, BYSECOND, BYSETPOS
and WKST; parts the rule leaves out take DTSTART's values. Without DTSTART
there is no anchor, so the rule must not depend on one: no COUNT, INTERVAL 1,
WEEKLY needs BYDAY, MONTHLY needs BYMONTHDAY or BYDAY, YEARLY needs a day part;
missing times are 00:00:00. As in dateutil, DTSTART is an occurrence only
when the rule produces it. COUNT is at most 1000 and only counts starts within
100 years of DTSTART. The rule is expanded here rather than by dateutil
because dateutil cannot be stopped early: for a rule that never occurs it
scans every period up to year 9999 (seconds for a daily rule). The expansion
matches dateutil's (the tests compare them) except in two corners where it
follows RFC 5545: BYSETPOS picks from the whole first period, including days
before DTSTART (dateutil: from DTSTART on), and BYWEEKNO matches a day by the
week it belongs to, also across New Year (dateutil misses some of those days,
e.g. 2022-01-02 for BYWEEKNO=52).

Cron: minute hour day-of-month month day-of-week; numbers, ``*``, ranges
``a-b``, lists ``a,b``, steps ``*/n`` and ``a-b/n``, month names JAN-DEC, day
names SUN-SAT (0 and 7 are Sunday), and @yearly, @annually, @monthly,
@weekly, @daily, @midnight, @hourly. As in Vixie cron, when both day fields
are restricted (neither starts with ``*``) a day matching either one counts.

Instants passed in must be aware datetimes (InvalidSchedule otherwise);
instants returned are in UTC.
"""

from __future__ import annotations

import calendar
import json
import re
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Final, Literal, NamedTuple, Protocol, TypeVar, cast
from zoneinfo import ZoneInfo

from patchwarden.errors import InvalidInput
from patchwarden.policy.errors import InvalidPolicy
from patchwarden.policy.rules import validate_timezone

RecurrenceKind = Literal["rrule", "cron"]

RECURRENCE_KINDS: Final[tuple[RecurrenceKind, ...]] = ("rrule", "cron")
MAX_WINDOW_DURATION: Final = timedelta(days=7)
# A recurring freeze may be long ("every year from 15 December to 5 January").
MAX_BLACKOUT_DURATION: Final = timedelta(days=366)
SEARCH_HORIZON: Final = timedelta(days=5 * 365 + 1)
MAX_STARTS_PER_SEARCH: Final = 10_000
MAX_OPENINGS: Final = 1000
MAX_WINDOWS: Final = 100
MAX_BLACKOUTS: Final = 1000
MAX_RULE_TEXT: Final = 1000
MAX_REASON: Final = 200
MAX_RRULE_COUNT: Final = 1000
# A COUNT rule is expanded once, when parsed; occurrences later than this
# after DTSTART are dropped, so a sparse or impossible rule costs bounded time.
COUNT_SPAN_YEARS: Final = 100
MAX_RRULE_INTERVAL: Final = 1000
# Instants outside these years are refused: the search reaches 5 years (plus
# a year of look-back for long blackouts) either way without leaving datetime's range.
FIRST_YEAR: Final = 1900
LAST_YEAR: Final = 9000

_FIRST_STEP: Final = timedelta(days=8)  # a weekly window and its neighbours
_TICK: Final = timedelta(microseconds=1)
# A fall-back repeats at most a day of wall-clock time: walls up to this far
# after the reading at the end of a range can still start inside it.
_WALL_MARGIN: Final = timedelta(days=2)


class InvalidSchedule(InvalidInput):
    """A window, blackout or schedule broke a validation rule. `field` names
    the offending key ("cron", "rrule", "timezone", "windows[0].duration_minutes")
    when there is one; `problem` is the message without it."""

    code = "invalid_schedule"

    def __init__(self, problem: str, field: str | None = None) -> None:
        self.problem = problem
        self.field = field
        super().__init__(f"{field}: {problem}" if field else problem)


# -- validation helpers ------------------------------------------------------------


def _utc(value: object, what: str) -> datetime:
    """`value` as a UTC datetime; InvalidSchedule unless it is an aware datetime
    in the supported years."""
    if not isinstance(value, datetime):
        raise InvalidSchedule(f"must be a datetime, not {type(value).__name__}", what)
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidSchedule(
            f"{value.isoformat()} has no time zone; pass an aware datetime "
            "(e.g. datetime.now(UTC))",
            what,
        )
    # Checked before converting: an offset moves the year by at most one day.
    if not FIRST_YEAR < value.year < LAST_YEAR:
        raise InvalidSchedule(
            f"{value.isoformat()} is outside the supported years {FIRST_YEAR}-{LAST_YEAR}", what
        )
    return value.astimezone(UTC)


def _zone(name: object, what: str = "timezone") -> ZoneInfo:
    try:
        return validate_timezone(name)
    except InvalidPolicy as exc:
        raise InvalidSchedule(str(exc), what) from exc


def _duration(value: object, maximum: timedelta, what: str) -> timedelta:
    limit = int(maximum.total_seconds()) // 60
    if not isinstance(value, timedelta):
        raise InvalidSchedule(f"must be a timedelta, not {type(value).__name__}", what)
    if value <= timedelta(0) or value > maximum or value % timedelta(minutes=1):
        raise InvalidSchedule(
            f"must be a whole number of minutes from 1 to {limit} ({maximum.days} days), "
            f"not {value}",
            what,
        )
    return value


def _reason(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidSchedule(f"must be text, not {type(value).__name__}", "reason")
    text = value.strip()
    if len(text) > MAX_REASON or any(not ch.isprintable() for ch in text):
        raise InvalidSchedule(f"must be at most {MAX_REASON} printable characters", "reason")
    return text


# -- wall-clock time ---------------------------------------------------------------


def _wall(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


def _instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant of wall-clock time `wall` in `zone`: the first of two
    when the hour repeats; the end of the gap when the zone skips `wall`."""
    first = wall.replace(tzinfo=zone)  # fold=0: the earlier instant of a repeated time
    instant = first.astimezone(UTC)
    if _wall(instant, zone) == wall:
        return instant
    # `wall` is in a gap. fold=0 reads it with the offset before the change,
    # which lands after the gap; fold=1 with the one after, before it. Bisect
    # (in whole seconds, as transitions are) for the first instant at or after `wall`.
    low = int(wall.replace(tzinfo=zone, fold=1).astimezone(UTC).timestamp())
    high = int(instant.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if _wall(datetime.fromtimestamp(middle, UTC), zone) >= wall:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


class _Rule(Protocol):
    """A parsed recurrence: wall-clock starts, in order, without repeats."""

    @property
    def until_utc(self) -> datetime | None:
        """RRULE UNTIL given in UTC (with Z), else None."""
        ...

    def walls(self, lo: datetime, hi: datetime) -> Iterator[datetime]:
        """Naive wall-clock starts w with lo <= w < hi."""
        ...


# -- cron --------------------------------------------------------------------------

_MONTH_NAMES: Final = {
    name: number
    for number, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"),
        start=1,
    )
}
_DAY_NAMES: Final = {
    name: number for number, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))
}
_CRON_FIELDS: Final[tuple[tuple[str, int, int, Mapping[str, int]], ...]] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day-of-month", 1, 31, {}),
    ("month", 1, 12, _MONTH_NAMES),
    ("day-of-week", 0, 7, _DAY_NAMES),
)
_CRON_MACROS: Final = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_CRON_HINT: Final = (
    "a cron expression has 5 fields, minute hour day-of-month month day-of-week, "
    "e.g. '0 2 * * 6' (02:00 on Saturdays)"
)


@dataclass(frozen=True)
class _Cron:
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    either_day: bool  # both day fields restricted: a day matching either counts
    until_utc: datetime | None = None

    def _day_matches(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        by_date = day.day in self.days
        by_weekday = day.isoweekday() % 7 in self.weekdays
        return by_date or by_weekday if self.either_day else by_date and by_weekday

    def walls(self, lo: datetime, hi: datetime) -> Iterator[datetime]:
        day, last = lo.date(), hi.date()
        while day <= last:
            if self._day_matches(day):
                for hour in self.hours:
                    for minute in self.minutes:
                        wall = datetime(day.year, day.month, day.day, hour, minute)
                        if wall >= hi:
                            return
                        if wall >= lo:
                            yield wall
            if day == date.max:
                return
            day += timedelta(days=1)


def _cron_value(token: str, low: int, high: int, names: Mapping[str, int]) -> int:
    if token.upper() in names:
        return names[token.upper()]
    if not token.isdigit() or not token.isascii():
        known = f" or a name ({', '.join(names)})" if names else ""
        raise ValueError(f"{token!r} is not a number{known}")
    value = int(token)
    if not low <= value <= high:
        raise ValueError(f"{value} is out of range {low}-{high}")
    return value


def _cron_field(text: str, low: int, high: int, names: Mapping[str, int]) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        base, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or not step_text.isascii() or int(step_text) < 1:
                raise ValueError(f"step {step_text!r} in {item!r} must be a whole number ≥ 1")
            step = int(step_text)
        if base == "*":
            first, last = low, high
        elif "-" in base:
            start, _, end = base.partition("-")
            first = _cron_value(start, low, high, names)
            last = _cron_value(end, low, high, names)
            if first > last:
                raise ValueError(f"range {base!r} runs backwards; write it as a list of two ranges")
        elif not base:
            raise ValueError(f"empty item in {text!r}")
        else:
            first = last = _cron_value(base, low, high, names)
            if slash:
                raise ValueError(f"step in {item!r} needs a range or '*' before the '/'")
        values.update(range(first, last + 1, step))
    return frozenset(values)


def _parse_cron(text: str) -> _Cron:
    expression = _CRON_MACROS.get(text.lower(), text) if text.startswith("@") else text
    if expression.startswith("@"):
        raise InvalidSchedule(
            f"unknown cron macro {text!r}; valid: {', '.join(_CRON_MACROS)}", "cron"
        )
    tokens = expression.split()
    if len(tokens) != len(_CRON_FIELDS):
        raise InvalidSchedule(
            f"invalid cron expression {text!r}: {len(tokens)} field(s); {_CRON_HINT}", "cron"
        )
    parsed: list[frozenset[int]] = []
    for token, (name, low, high, names) in zip(tokens, _CRON_FIELDS, strict=True):
        try:
            parsed.append(_cron_field(token, low, high, names))
        except ValueError as exc:
            raise InvalidSchedule(
                f"invalid cron expression {text!r}: {name} field {token!r}: {exc}", "cron"
            ) from exc
    minutes, hours, days, months, weekdays = parsed
    return _Cron(
        minutes=tuple(sorted(minutes)),
        hours=tuple(sorted(hours)),
        days=days,
        months=months,
        weekdays=frozenset(day % 7 for day in weekdays),  # 7 is Sunday too
        # Vixie cron's rule: a day field is restricted unless it starts with '*'.
        either_day=not tokens[2].startswith("*") and not tokens[4].startswith("*"),
    )


# -- RRULE -------------------------------------------------------------------------

_YEARLY, _MONTHLY, _WEEKLY, _DAILY, _HOURLY, _MINUTELY = range(6)
_FREQS: Final = ("YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY", "MINUTELY")
_WEEKDAYS: Final = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")  # index = date.weekday()
_RRULE_PARTS: Final = (
    "FREQ",
    "UNTIL",
    "COUNT",
    "INTERVAL",
    "BYSECOND",
    "BYMINUTE",
    "BYHOUR",
    "BYDAY",
    "BYMONTHDAY",
    "BYYEARDAY",
    "BYWEEKNO",
    "BYMONTH",
    "BYSETPOS",
    "WKST",
)
_DATE_TIME = re.compile(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(Z?)", re.ASCII)
_BYDAY_ITEM = re.compile(r"([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)", re.ASCII)
_INTEGER = re.compile(r"[+-]?\d{1,4}", re.ASCII)
_RRULE_HINT: Final = (
    "e.g. 'FREQ=WEEKLY;BYDAY=SA;BYHOUR=2;BYMINUTE=0', optionally after a line "
    "'DTSTART:20260103T020000' (local time)"
)


def _year_length(year: int) -> int:
    return 366 if calendar.isleap(year) else 365


def _week_one(year: int, week_start: int) -> date:
    """The first day of week 1 of `year`: the first week (starting on
    `week_start`) with at least four days in the year (RFC 5545, ISO 8601)."""
    new_year = date(year, 1, 1)
    offset = (new_year.weekday() - week_start) % 7
    first = new_year - timedelta(days=offset)
    return first if 7 - offset >= 4 else first + timedelta(days=7)


@dataclass(frozen=True)
class _RRule:
    freq: int
    interval: int
    dtstart: datetime | None
    until: datetime | None  # local wall-clock time
    until_utc: datetime | None
    count: int | None
    months: frozenset[int]  # an empty set means any
    weeknos: frozenset[int]
    yeardays: frozenset[int]
    monthdays: frozenset[int]
    weekdays: frozenset[int]  # BYDAY without ordinal
    nth_weekdays: frozenset[tuple[int, int]]  # (ordinal, weekday)
    hours: tuple[int, ...]  # empty: any (only for rules finer than the unit)
    minutes: tuple[int, ...]
    seconds: tuple[int, ...]
    setpos: frozenset[int]
    week_start: int
    expanded: tuple[datetime, ...] | None = None  # every start of a COUNT rule

    # -- which days ------------------------------------------------------------

    def _day_matches(self, day: date) -> bool:
        if self.months and day.month not in self.months:
            return False
        if self.weeknos and not self._weekno_matches(day):
            return False
        year_day = day.timetuple().tm_yday
        year_length = _year_length(day.year)
        if self.yeardays and not (
            year_day in self.yeardays or year_day - year_length - 1 in self.yeardays
        ):
            return False
        month_length = calendar.monthrange(day.year, day.month)[1]
        if self.monthdays and not (
            day.day in self.monthdays or day.day - month_length - 1 in self.monthdays
        ):
            return False
        if not self.weekdays and not self.nth_weekdays:
            return True
        weekday = day.weekday()
        if weekday in self.weekdays:
            return True
        # Ordinals count within the month (MONTHLY, or YEARLY with BYMONTH), else the year.
        if self.freq == _MONTHLY or self.months:
            position, length = day.day, month_length
        else:
            position, length = year_day, year_length
        forward = (position - 1) // 7 + 1
        backward = -((length - position) // 7 + 1)
        return any(
            wanted == weekday and nth in (forward, backward) for nth, wanted in self.nth_weekdays
        )

    def _weekno_matches(self, day: date) -> bool:
        year = day.year
        first = _week_one(year, self.week_start)
        if day < first:
            year -= 1
            first = _week_one(year, self.week_start)
        elif day >= _week_one(year + 1, self.week_start):
            year += 1
            first = _week_one(year, self.week_start)
        number = (day - first).days // 7 + 1
        weeks = (_week_one(year + 1, self.week_start) - first).days // 7
        return number in self.weeknos or number - weeks - 1 in self.weeknos

    # -- periods ---------------------------------------------------------------

    def _index(self, moment: datetime) -> int:
        """The number of the period (year, month, week …) containing `moment`."""
        if self.freq == _YEARLY:
            return moment.year
        if self.freq == _MONTHLY:
            return moment.year * 12 + moment.month - 1
        ordinal = moment.toordinal()
        if self.freq == _WEEKLY:
            # date(1, 1, 1) is a Monday: week starts are 1 + week_start + 7k.
            return (ordinal - 1 - self.week_start) // 7
        if self.freq == _DAILY:
            return ordinal
        if self.freq == _HOURLY:
            return ordinal * 24 + moment.hour
        return (ordinal * 24 + moment.hour) * 60 + moment.minute

    def _period_days(self, index: int) -> tuple[date, date] | None:
        """First and last day of a (day-based) period; None beyond the calendar."""
        try:
            if self.freq == _YEARLY:
                return date(index, 1, 1), date(index, 12, 31)
            if self.freq == _MONTHLY:
                year, month = divmod(index, 12)
                first = date(year, month + 1, 1)
                return first, first.replace(day=calendar.monthrange(year, month + 1)[1])
            if self.freq == _WEEKLY:
                first = date.fromordinal(1 + self.week_start + 7 * index)
                return first, first + timedelta(days=6)
            day = date.fromordinal(index)
            return day, day
        except (ValueError, OverflowError):
            return None

    def _pick(self, candidates: list[datetime]) -> list[datetime]:
        if not self.setpos:
            return candidates
        size = len(candidates)
        return sorted(
            {
                candidates[position - 1 if position > 0 else size + position]
                for position in self.setpos
                if -size <= position <= size
            }
        )

    def _first_index(self, first: datetime) -> int:
        """The first period on the INTERVAL grid that ends after `first`."""
        index = self._index(first)
        if self.dtstart is not None:
            base = self._index(self.dtstart)
            index += (base - index) % self.interval
        return index

    def _day_periods(self, first: datetime, hi: datetime) -> Iterator[list[datetime]]:
        times = [
            time(hour, minute, second)
            for hour in self.hours
            for minute in self.minutes
            for second in self.seconds
        ]
        index = self._first_index(first)
        while (days := self._period_days(index)) is not None:
            start, end = days
            if datetime.combine(start, time()) >= hi:
                return
            if not self.setpos:
                # BYSETPOS picks from the whole period; without it, skip days out of range.
                start, end = max(start, first.date()), min(end, hi.date())
            candidates: list[datetime] = []
            day = start
            while day <= end:
                if self._day_matches(day):
                    candidates.extend(datetime.combine(day, moment) for moment in times)
                if day == date.max:
                    break
                day += timedelta(days=1)
            yield self._pick(candidates)
            index += self.interval

    def _sub_day_periods(self, first: datetime, hi: datetime) -> Iterator[list[datetime]]:
        # One period per hour or minute: walk day by day and visit only the
        # periods on the INTERVAL grid, so a day the rule skips costs one check.
        per_day = 24 if self.freq == _HOURLY else 24 * 60
        base = None if self.dtstart is None else self._index(self.dtstart)
        hours, minutes = set(self.hours), set(self.minutes)
        day = first.date()
        while datetime.combine(day, time()) < hi:
            if self._day_matches(day):
                day_index = day.toordinal() * per_day
                start = day_index
                if base is not None:
                    start = max(base, day_index + (base - day_index) % self.interval)
                for index in range(start, day_index + per_day, self.interval):
                    offset = index - day_index
                    hour, minute = (offset, -1) if self.freq == _HOURLY else divmod(offset, 60)
                    if hours and hour not in hours:
                        continue
                    if minute >= 0 and minutes and minute not in minutes:
                        continue
                    yield self._pick(
                        [
                            datetime.combine(day, time(hour, minute_of, second))
                            for minute_of in (self.minutes if minute < 0 else (minute,))
                            for second in self.seconds
                        ]
                    )
            if day == date.max:
                return
            day += timedelta(days=1)

    def walls(self, lo: datetime, hi: datetime) -> Iterator[datetime]:
        if self.expanded is not None:
            for wall in self.expanded[bisect_left(self.expanded, lo) :]:
                if wall >= hi:
                    return
                yield wall
            return
        if self.until is not None and self.until < lo:
            return
        first = lo
        if self.dtstart is not None and (self.count is not None or self.dtstart > lo):
            first = self.dtstart  # COUNT counts from DTSTART, so start there
        periods = (
            self._day_periods(first, hi)
            if self.freq <= _DAILY
            else self._sub_day_periods(first, hi)
        )
        seen = 0
        for candidates in periods:
            for wall in candidates:
                if self.dtstart is not None and wall < self.dtstart:
                    continue
                if self.until is not None and wall > self.until:
                    return
                seen += 1
                if (self.count is not None and seen > self.count) or wall >= hi:
                    return
                if wall >= lo:
                    yield wall


def _date_time(
    value: str, what: str, bad: Callable[[str], InvalidSchedule]
) -> tuple[datetime, bool]:
    """(naive datetime, is UTC) of an iCalendar date-time such as 20260103T020000[Z]."""
    match = _DATE_TIME.fullmatch(value)
    if match is None:
        raise bad(f"{what} {value!r} must be a date-time like 20260103T020000")
    try:
        year, month, day, hour, minute, second = (int(group) for group in match.groups()[:6])
        moment = datetime(year, month, day, hour, minute, second)
    except ValueError as exc:
        raise bad(f"{what} {value!r} is not a valid date-time ({exc})") from exc
    if not FIRST_YEAR <= moment.year <= LAST_YEAR:
        raise bad(f"{what} {value!r} is outside the supported years {FIRST_YEAR}-{LAST_YEAR}")
    return moment, match.group(7) == "Z"


def _rrule_lines(text: str, bad: Callable[[str], InvalidSchedule]) -> tuple[str, datetime | None]:
    """The rule body and the DTSTART (naive local) of an RRULE text."""
    body: str | None = None
    dtstart: datetime | None = None
    for line in (line.strip() for line in text.splitlines()):
        if not line:
            continue
        name, colon, value = line.partition(":")
        upper = name.strip().upper()
        if colon and upper.startswith("DTSTART"):
            if dtstart is not None:
                raise bad("more than one DTSTART")
            if upper != "DTSTART":
                raise bad(
                    "DTSTART takes no parameters such as TZID: it is local time in the "
                    "window's time zone (the 'timezone' field), e.g. DTSTART:20260103T020000"
                )
            dtstart, is_utc = _date_time(value.strip(), "DTSTART", bad)
            if is_utc:
                raise bad(
                    "DTSTART must be local time without Z: the window's time zone is "
                    "its 'timezone' field"
                )
        elif (colon and upper == "RRULE") or (not colon and "=" in line):
            if body is not None:
                raise bad("more than one RRULE; use one window per rule")
            body = value if colon else line
        else:
            raise bad(
                f"unsupported line {line!r}: give one RRULE, optionally after DTSTART "
                "(use blackouts instead of EXDATE or EXRULE)"
            )
    if body is None:
        raise bad(f"no rule found; {_RRULE_HINT}")
    return body, dtstart


def _rrule_parts(body: str, bad: Callable[[str], InvalidSchedule]) -> dict[str, str]:
    items = body.strip().split(";")
    if items and not items[-1].strip():
        items.pop()  # tolerate one trailing ';'
    parts: dict[str, str] = {}
    for item in items:
        key, equals, value = item.partition("=")
        key, value = key.strip().upper(), value.strip()
        if not equals or not key or not value:
            raise bad(f"part {item.strip()!r} is not NAME=VALUE")
        if key not in _RRULE_PARTS:
            raise bad(f"unknown part {key}; valid: {', '.join(_RRULE_PARTS)}")
        if key in parts:
            raise bad(f"{key} is given twice")
        parts[key] = value
    if "FREQ" not in parts:
        raise bad(f"FREQ is missing; {_RRULE_HINT}")
    return parts


def _rrule_numbers(
    parts: Mapping[str, str],
    key: str,
    low: int,
    high: int,
    bad: Callable[[str], InvalidSchedule],
    *,
    signed: bool = False,
) -> frozenset[int]:
    if key not in parts:
        return frozenset()
    values: set[int] = set()
    for item in parts[key].split(","):
        if _INTEGER.fullmatch(item) is None or (not signed and item[0] in "+-"):
            raise bad(f"{key} value {item!r} is not a whole number")
        value = int(item)
        if not (low <= abs(value) <= high if signed else low <= value <= high):
            ranges = f"{low} to {high} or -{high} to -{low}" if signed else f"{low} to {high}"
            raise bad(f"{key} value {item!r} is out of range ({ranges})")
        values.add(value)
    return frozenset(values)


def _rrule_count(
    parts: Mapping[str, str], key: str, maximum: int, bad: Callable[[str], InvalidSchedule]
) -> int | None:
    if key not in parts:
        return None
    value = parts[key]
    if not value.isdigit() or not value.isascii() or not 1 <= int(value) <= maximum:
        raise bad(f"{key}={value} must be a whole number from 1 to {maximum}")
    return int(value)


def _parse_rrule(text: str) -> _RRule:
    def bad(problem: str) -> InvalidSchedule:
        return InvalidSchedule(f"invalid RRULE {text!r}: {problem}", "rrule")

    body, dtstart = _rrule_lines(text, bad)
    parts = _rrule_parts(body, bad)
    freq_name = parts["FREQ"].upper()
    if freq_name == "SECONDLY":
        raise bad("FREQ=SECONDLY is not supported: windows start at most once a minute")
    if freq_name not in _FREQS:
        raise bad(f"FREQ={parts['FREQ']} is not one of {', '.join(_FREQS)}")
    freq = _FREQS.index(freq_name)
    interval = _rrule_count(parts, "INTERVAL", MAX_RRULE_INTERVAL, bad) or 1
    count = _rrule_count(parts, "COUNT", MAX_RRULE_COUNT, bad)
    until = until_utc = None
    if "UNTIL" in parts:
        if count is not None:
            raise bad("COUNT and UNTIL exclude each other")
        moment, is_utc = _date_time(parts["UNTIL"].upper(), "UNTIL", bad)
        if is_utc:
            until_utc = moment.replace(tzinfo=UTC)
        else:
            until = moment
    week_start = 0
    if "WKST" in parts:
        if parts["WKST"].upper() not in _WEEKDAYS:
            raise bad(f"WKST={parts['WKST']} is not one of {', '.join(_WEEKDAYS)}")
        week_start = _WEEKDAYS.index(parts["WKST"].upper())
    weekdays: set[int] = set()
    nth_weekdays: set[tuple[int, int]] = set()
    for item in parts["BYDAY"].upper().split(",") if "BYDAY" in parts else ():
        match = _BYDAY_ITEM.fullmatch(item)
        if match is None:
            raise bad(f"BYDAY value {item!r} is not a weekday such as SA, 1SA or -1SU")
        weekday = _WEEKDAYS.index(match.group(2))
        if match.group(1) is None:
            weekdays.add(weekday)
            continue
        nth = int(match.group(1))
        if not 1 <= abs(nth) <= 53:
            raise bad(f"BYDAY value {item!r}: the ordinal must be 1 to 53 or -53 to -1")
        nth_weekdays.add((nth, weekday))
    months = _rrule_numbers(parts, "BYMONTH", 1, 12, bad)
    weeknos = _rrule_numbers(parts, "BYWEEKNO", 1, 53, bad, signed=True)
    yeardays = _rrule_numbers(parts, "BYYEARDAY", 1, 366, bad, signed=True)
    monthdays = _rrule_numbers(parts, "BYMONTHDAY", 1, 31, bad, signed=True)
    setpos = _rrule_numbers(parts, "BYSETPOS", 1, 366, bad, signed=True)
    hours = _rrule_numbers(parts, "BYHOUR", 0, 23, bad)
    minutes = _rrule_numbers(parts, "BYMINUTE", 0, 59, bad)
    seconds = _rrule_numbers(parts, "BYSECOND", 0, 59, bad)

    # RFC 5545's table of which BYxxx parts go with which FREQ.
    if nth_weekdays and (freq not in (_YEARLY, _MONTHLY) or weeknos):
        raise bad("BYDAY with an ordinal (1SA, -1SU) needs FREQ=MONTHLY or YEARLY without BYWEEKNO")
    if monthdays and freq == _WEEKLY:
        raise bad("BYMONTHDAY cannot be used with FREQ=WEEKLY")
    if yeardays and freq in (_MONTHLY, _WEEKLY, _DAILY):
        raise bad(f"BYYEARDAY cannot be used with FREQ={freq_name}")
    if weeknos and freq != _YEARLY:
        raise bad("BYWEEKNO needs FREQ=YEARLY")
    by_parts = [key for key in parts if key.startswith("BY") and key != "BYSETPOS"]
    if setpos and not by_parts:
        raise bad("BYSETPOS needs another BYxxx part to pick from")
    has_day = bool(weeknos or yeardays or monthdays or weekdays or nth_weekdays)
    if dtstart is None:
        # Without an anchor the rule must not depend on one.
        needs = {
            _YEARLY: ("a day (BYMONTHDAY, BYDAY, BYYEARDAY or BYWEEKNO)", has_day),
            _MONTHLY: ("BYMONTHDAY or BYDAY", bool(monthdays or weekdays or nth_weekdays)),
            _WEEKLY: ("BYDAY", bool(weekdays)),
        }
        if freq in needs and not needs[freq][1]:
            raise bad(f"FREQ={freq_name} needs {needs[freq][0]} or a DTSTART to take it from")
        if count is not None:
            raise bad("COUNT needs a DTSTART to count from")
        if interval != 1:
            raise bad(f"INTERVAL={interval} needs a DTSTART to say which periods count")
    # Parts left out take DTSTART's values (midnight without DTSTART), as in dateutil.
    anchor = dtstart or datetime(2000, 1, 1)
    if not has_day:
        if freq == _YEARLY:
            months = months or frozenset({anchor.month})
            monthdays = frozenset({anchor.day})
        elif freq == _MONTHLY:
            monthdays = frozenset({anchor.day})
        elif freq == _WEEKLY:
            weekdays = {anchor.weekday()}
    if not hours and freq <= _DAILY:
        hours = frozenset({anchor.hour})
    if not minutes and freq <= _HOURLY:
        minutes = frozenset({anchor.minute})
    if not seconds:
        seconds = frozenset({anchor.second})
    rule = _RRule(
        freq=freq,
        interval=interval,
        dtstart=dtstart,
        until=until,
        until_utc=until_utc,
        count=count,
        months=months,
        weeknos=weeknos,
        yeardays=yeardays,
        monthdays=monthdays,
        weekdays=frozenset(weekdays),
        nth_weekdays=frozenset(nth_weekdays),
        hours=tuple(sorted(hours)),
        minutes=tuple(sorted(minutes)),
        seconds=tuple(sorted(seconds)),
        setpos=setpos,
        week_start=week_start,
    )
    if dtstart is None or count is None:
        return rule
    # COUNT counts from DTSTART, so every query would walk from there: expand once.
    end = datetime(dtstart.year + COUNT_SPAN_YEARS, 1, 1)
    return replace(rule, expanded=tuple(rule.walls(dtstart, end)))


# -- values ------------------------------------------------------------------------


@dataclass(frozen=True)
class Recurrence:
    """When something starts, in wall-clock time: an RRULE or a cron expression
    (see the module docstring). Parsed on construction; InvalidSchedule (field
    "rrule" or "cron") says what is wrong. Equal when kind and text are equal."""

    kind: RecurrenceKind
    text: str
    _rule: _Rule = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in RECURRENCE_KINDS:
            raise InvalidSchedule(
                f"must be one of {', '.join(RECURRENCE_KINDS)}, not {self.kind!r}", "kind"
            )
        if not isinstance(self.text, str) or not self.text.strip():
            raise InvalidSchedule(f"must be non-empty text, not {self.text!r}", self.kind)
        text = self.text.strip()
        if len(text) > MAX_RULE_TEXT:
            raise InvalidSchedule(f"must be at most {MAX_RULE_TEXT} characters", self.kind)
        object.__setattr__(self, "text", text)
        rule: _Rule = _parse_cron(text) if self.kind == "cron" else _parse_rrule(text)
        object.__setattr__(self, "_rule", rule)

    @classmethod
    def rrule(cls, text: str) -> Recurrence:
        return cls("rrule", text)

    @classmethod
    def cron(cls, text: str) -> Recurrence:
        return cls("cron", text)


@dataclass(frozen=True)
class MaintenanceWindow:
    """Opens at every start of `recurrence` (wall-clock time in `timezone`) for
    `duration` of real time: whole minutes, 1 minute to 7 days."""

    recurrence: Recurrence
    duration: timedelta
    timezone: str

    def __post_init__(self) -> None:
        if not isinstance(self.recurrence, Recurrence):
            raise InvalidSchedule(
                f"must be a Recurrence, not {type(self.recurrence).__name__}", "recurrence"
            )
        _duration(self.duration, MAX_WINDOW_DURATION, "duration")
        _zone(self.timezone)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def as_dict(self) -> dict[str, object]:
        """``{"cron" | "rrule": text, "duration_minutes": n, "timezone": name}``;
        `parse_window` reads it back into an equal window."""
        return {
            self.recurrence.kind: self.recurrence.text,
            "duration_minutes": self.duration // timedelta(minutes=1),
            "timezone": self.timezone,
        }


@dataclass(frozen=True)
class Blackout:
    """A change freeze: no window is open during it. Either absolute, [start,
    end) between two aware datetimes (stored in UTC), or recurring: a
    recurrence in `timezone` with a `duration` (whole minutes, at most 366
    days). Build with `Blackout.between` or `Blackout.recurring`."""

    start: datetime | None = None
    end: datetime | None = None
    recurrence: Recurrence | None = None
    duration: timedelta | None = None
    timezone: str | None = None
    reason: str = ""

    def __post_init__(self) -> None:
        absolute = (self.start, self.end)
        recurring = (self.recurrence, self.duration, self.timezone)
        if all(item is not None for item in absolute) and all(item is None for item in recurring):
            start, end = _utc(self.start, "start"), _utc(self.end, "end")
            if start >= end:
                raise InvalidSchedule(
                    f"must be after start ({start.isoformat()}), not {end.isoformat()}", "end"
                )
            object.__setattr__(self, "start", start)
            object.__setattr__(self, "end", end)
        elif all(item is not None for item in recurring) and all(item is None for item in absolute):
            if not isinstance(self.recurrence, Recurrence):
                raise InvalidSchedule(
                    f"must be a Recurrence, not {type(self.recurrence).__name__}", "recurrence"
                )
            _duration(self.duration, MAX_BLACKOUT_DURATION, "duration")
            _zone(self.timezone)
        else:
            raise InvalidSchedule(
                "a blackout is either absolute (start and end) or recurring "
                "(a recurrence, a duration and a timezone), not a mix"
            )
        object.__setattr__(self, "reason", _reason(self.reason))

    @classmethod
    def between(cls, start: datetime, end: datetime, reason: str = "") -> Blackout:
        return cls(start=start, end=end, reason=reason)

    @classmethod
    def recurring(
        cls, recurrence: Recurrence, duration: timedelta, timezone: str, reason: str = ""
    ) -> Blackout:
        return cls(recurrence=recurrence, duration=duration, timezone=timezone, reason=reason)

    def as_dict(self) -> dict[str, object]:
        """The storage form that `parse_blackout` reads back into an equal blackout."""
        if self.start is not None and self.end is not None:
            data: dict[str, object] = {"start": self.start.isoformat(), "end": self.end.isoformat()}
        else:
            recurrence = cast(Recurrence, self.recurrence)
            data = {
                recurrence.kind: recurrence.text,
                "duration_minutes": cast(timedelta, self.duration) // timedelta(minutes=1),
                "timezone": self.timezone,
            }
        data["reason"] = self.reason
        return data


_Item = TypeVar("_Item")


def _items(value: object, kind: type[_Item], what: str, maximum: int) -> tuple[_Item, ...]:
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise InvalidSchedule(f"must be a list of {kind.__name__}, not {value!r}", what)
    items = tuple(value)
    for position, item in enumerate(items):
        if not isinstance(item, kind):
            raise InvalidSchedule(
                f"must be a {kind.__name__}, not {type(item).__name__}", f"{what}[{position}]"
            )
    if len(items) > maximum:
        raise InvalidSchedule(f"at most {maximum} allowed, not {len(items)}", what)
    return items


@dataclass(frozen=True)
class Schedule:
    """Maintenance windows and blackouts. No windows: open at any time except
    during blackouts. At most 100 windows and 1000 blackouts."""

    windows: tuple[MaintenanceWindow, ...] = ()
    blackouts: tuple[Blackout, ...] = ()

    def __post_init__(self) -> None:
        windows = _items(self.windows, MaintenanceWindow, "windows", MAX_WINDOWS)
        object.__setattr__(self, "windows", windows)
        blackouts = _items(self.blackouts, Blackout, "blackouts", MAX_BLACKOUTS)
        object.__setattr__(self, "blackouts", blackouts)

    def as_dict(self) -> dict[str, object]:
        """``{"windows": [...], "blackouts": [...]}``, read back by `parse_schedule`."""
        return {
            "windows": [window.as_dict() for window in self.windows],
            "blackouts": [blackout.as_dict() for blackout in self.blackouts],
        }


@dataclass(frozen=True)
class Interval:
    """An opening: [start, end) in UTC. `timezone` is the zone of the window
    that opens it (UTC in a schedule without windows), for `local_start` and
    `local_end`. None: beyond what the search covered (see the module docstring)."""

    start: datetime | None
    end: datetime | None
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        if self.start is not None:
            object.__setattr__(self, "start", _utc(self.start, "start"))
        if self.end is not None:
            object.__setattr__(self, "end", _utc(self.end, "end"))
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise InvalidSchedule("an interval must end after it starts", "end")
        _zone(self.timezone)

    @property
    def local_start(self) -> datetime | None:
        return None if self.start is None else self.start.astimezone(ZoneInfo(self.timezone))

    @property
    def local_end(self) -> datetime | None:
        return None if self.end is None else self.end.astimezone(ZoneInfo(self.timezone))

    def contains(self, at: datetime) -> bool:
        """Whether `at` is inside: start inclusive, end exclusive."""
        instant = _utc(at, "at")
        return (self.start is None or self.start <= instant) and (
            self.end is None or instant < self.end
        )

    def as_dict(self) -> dict[str, str | None]:
        def text(moment: datetime | None) -> str | None:
            return None if moment is None else moment.isoformat()

        return {
            "start": text(self.start),
            "end": text(self.end),
            "local_start": text(self.local_start),
            "local_end": text(self.local_end),
            "timezone": self.timezone,
        }


# -- the open set ------------------------------------------------------------------


class _Span(NamedTuple):
    start: datetime
    end: datetime
    zone: str


def _starts(rule: _Rule, zone: ZoneInfo, lo: datetime, hi: datetime) -> Iterator[datetime]:
    """UTC starts s with lo <= s < hi, in order, each once."""
    last: datetime | None = None
    # Under the gap and fold rules a later wall time never gives an earlier
    # start, and no wall time up to the reading just before lo gives a start
    # at or after lo: the walls from there on, in order, give the starts in order.
    for wall in rule.walls(_wall(lo - _TICK, zone), _wall(hi, zone) + _WALL_MARGIN):
        start = _instant(wall, zone)
        if start >= hi or (rule.until_utc is not None and start > rule.until_utc):
            return
        if start >= lo and start != last:
            last = start
            yield start


def _latest_start(rule: _Rule, zone: ZoneInfo, earliest: datetime, lo: datetime) -> datetime | None:
    """The last start s with earliest <= s < lo. Searched backwards in doubling
    steps, so a rule that starts every minute does not generate a year of starts."""
    step, upper = timedelta(minutes=1), lo
    while upper > earliest:
        lower = max(earliest, upper - step)
        found = None
        for found in _starts(rule, zone, lower, upper):  # noqa: B007  # keep the last
            pass
        if found is not None:
            return found
        upper, step = lower, step * 2
    return None


def _occurrences(
    recurrence: Recurrence, zone: ZoneInfo, duration: timedelta, lo: datetime, hi: datetime
) -> tuple[list[tuple[datetime, datetime]], datetime]:
    """The occurrences that overlap [lo, hi), and the instant up to which that
    list is complete (hi, or earlier when the search gave up on a dense rule)."""
    rule = recurrence._rule
    found: list[tuple[datetime, datetime]] = []
    # Every occurrence lasts as long, so of those starting before lo only the last matters.
    before = _latest_start(rule, zone, lo - duration + _TICK, lo)
    if before is not None:
        found.append((before, before + duration))
    for number, start in enumerate(_starts(rule, zone, lo, hi)):
        if number == MAX_STARTS_PER_SEARCH:
            return found, start
        found.append((start, start + duration))
    return found, hi


def _union(spans: list[_Span]) -> list[_Span]:
    merged: list[_Span] = []
    for span in sorted(spans, key=lambda item: item.start):
        if merged and span.start <= merged[-1].end:
            if span.end > merged[-1].end:
                merged[-1] = merged[-1]._replace(end=span.end)
        else:
            merged.append(span)
    return merged


def _minus(opens: list[_Span], closed: list[_Span]) -> list[_Span]:
    """Sorted disjoint `opens` without sorted disjoint `closed`."""
    result: list[_Span] = []
    first = 0
    for span in opens:
        while first < len(closed) and closed[first].end <= span.start:
            first += 1
        start = span.start
        for shut in closed[first:]:
            if shut.start >= span.end:
                break
            if shut.start > start:
                result.append(_Span(start, shut.start, span.zone))
            start = max(start, shut.end)
        if start < span.end:
            result.append(_Span(start, span.end, span.zone))
    return result


def _open_spans(schedule: Schedule, lo: datetime, hi: datetime) -> tuple[list[_Span], datetime]:
    """The open parts of [lo, hi), sorted, disjoint and not touching, cut at
    the instant up to which the answer is complete (returned too)."""
    complete = hi
    opens: list[_Span] = []
    if not schedule.windows:
        opens.append(_Span(lo, hi, "UTC"))
    for window in schedule.windows:
        found, reached = _occurrences(window.recurrence, window.zone, window.duration, lo, hi)
        complete = min(complete, reached)
        opens.extend(_Span(start, end, window.timezone) for start, end in found)
    closed: list[_Span] = []
    for blackout in schedule.blackouts:
        if blackout.start is not None and blackout.end is not None:
            if blackout.start < hi and blackout.end > lo:
                closed.append(_Span(blackout.start, blackout.end, "UTC"))
            continue
        recurrence = cast(Recurrence, blackout.recurrence)
        duration = cast(timedelta, blackout.duration)
        zone = ZoneInfo(cast(str, blackout.timezone))
        found, reached = _occurrences(recurrence, zone, duration, lo, hi)
        complete = min(complete, reached)
        closed.extend(_Span(start, end, "UTC") for start, end in found)

    def clip(spans: list[_Span]) -> list[_Span]:
        return [
            _Span(max(span.start, lo), min(span.end, complete), span.zone)
            for span in spans
            if span.start < complete and span.end > lo
        ]

    return _minus(_union(clip(opens)), _union(clip(closed))), complete


def _grow(reach: timedelta) -> timedelta:
    return min(reach * 2, SEARCH_HORIZON)


def is_open(schedule: Schedule, at: datetime) -> bool:
    """Whether `at` lies in a window (any time, for a schedule without windows)
    and in no blackout."""
    instant = _utc(at, "at")
    spans, _ = _open_spans(schedule, instant, instant + _TICK)
    return bool(spans)


def may_start(schedule: Schedule, at: datetime) -> bool:
    """Whether the rollout engine may start a job at `at`: only inside an open
    window, the same as `is_open`. Only starts are gated here; what happens to
    a job still running when the window closes is the engine's decision."""
    return is_open(schedule, at)


def current_window(schedule: Schedule, at: datetime) -> Interval | None:
    """The opening containing `at` (a window clipped by blackouts, merged with
    windows that overlap or touch it), or None when the schedule is closed."""
    instant = _utc(at, "at")
    if not is_open(schedule, instant):
        return None
    end: datetime | None = None
    zone = "UTC"
    reach = _FIRST_STEP
    while True:
        spans, complete = _open_spans(schedule, instant, instant + reach)
        if not spans:
            break
        zone = spans[0].zone
        if spans[0].end < complete:
            end = spans[0].end
            break
        if complete < instant + reach or reach >= SEARCH_HORIZON:
            break  # still open where the search gave up
        reach = _grow(reach)
    start: datetime | None = None
    reach = _FIRST_STEP
    while True:
        lo = instant - reach
        spans, complete = _open_spans(schedule, lo, instant + _TICK)
        if complete <= instant or not spans:
            break  # too many starts to look back over: the start stays unknown
        zone = spans[-1].zone
        if spans[-1].start > lo:
            start = spans[-1].start
            break
        if reach >= SEARCH_HORIZON:
            break
        reach = _grow(reach)
    return Interval(start, end, zone)


def next_openings(schedule: Schedule, after: datetime, count: int = 10) -> list[Interval]:
    """The first `count` openings that end after `after`, in order: the one in
    progress at `after` (with its real start) first, then those to come. Fewer
    when the search horizon is reached; the last one's end is None when it is
    still open there."""
    instant = _utc(after, "after")
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_OPENINGS:
        raise InvalidSchedule(
            f"must be a whole number from 1 to {MAX_OPENINGS}, not {count!r}", "count"
        )
    reach = _FIRST_STEP
    while True:
        spans, complete = _open_spans(schedule, instant, instant + reach)
        ended = sum(1 for span in spans if span.end < complete)
        if ended >= count or complete < instant + reach or reach >= SEARCH_HORIZON:
            break
        reach = _grow(reach)
    openings = [
        Interval(span.start, span.end if span.end < complete else None, span.zone)
        for span in spans[:count]
    ]
    if openings and spans[0].start == instant:
        current = current_window(schedule, instant)
        if current is not None:
            openings[0] = replace(openings[0], start=current.start, timezone=current.timezone)
    return openings


# -- storage and API form ----------------------------------------------------------

_WINDOW_KEYS: Final = ("rrule", "cron", "duration_minutes", "timezone")
_ABSOLUTE_KEYS: Final = ("start", "end", "reason")
_RECURRING_KEYS: Final = ("rrule", "cron", "duration_minutes", "timezone", "reason")


def _mapping(data: object, what: str, keys: tuple[str, ...]) -> Mapping[str, object]:
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as exc:
            raise InvalidSchedule(f"a {what} text must be a JSON object ({exc})") from exc
    if not isinstance(data, Mapping):
        raise InvalidSchedule(f"a {what} must be a mapping, not {type(data).__name__}")
    unknown = sorted(str(key) for key in data if key not in keys)
    if unknown:
        raise InvalidSchedule(f"unknown key(s) {', '.join(unknown)}; valid: {', '.join(keys)}")
    return cast(Mapping[str, object], data)


def _recurrence_from(data: Mapping[str, object], what: str) -> Recurrence:
    given = [kind for kind in RECURRENCE_KINDS if kind in data]
    if len(given) != 1:
        raise InvalidSchedule(
            f"a recurring {what} needs exactly one of 'rrule' or 'cron', e.g. "
            '{"cron": "0 2 * * 6", "duration_minutes": 120, "timezone": "Europe/Berlin"}'
        )
    kind = given[0]
    text = data[kind]
    if not isinstance(text, str):
        raise InvalidSchedule(f"must be text, not {type(text).__name__}", kind)
    return Recurrence(kind, text)


def _minutes_from(data: Mapping[str, object], maximum: timedelta) -> timedelta:
    value = data.get("duration_minutes")
    limit = int(maximum.total_seconds()) // 60
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
        raise InvalidSchedule(
            f"must be a whole number of minutes from 1 to {limit}, not {value!r}",
            "duration_minutes",
        )
    return timedelta(minutes=value)


def _timezone_from(data: Mapping[str, object]) -> str:
    if "timezone" not in data:
        raise InvalidSchedule("is required, e.g. 'Europe/Berlin' or 'UTC'", "timezone")
    _zone(data["timezone"])
    return cast(str, data["timezone"])


def parse_window(data: str | Mapping[str, object]) -> MaintenanceWindow:
    """A window from its storage/API form (a mapping or JSON text):
    ``{"rrule": "...", "duration_minutes": 120, "timezone": "Europe/Berlin"}`` or
    ``{"cron": "0 2 * * 6", ...}``. InvalidSchedule names the bad key."""
    mapping = _mapping(data, "window", _WINDOW_KEYS)
    return MaintenanceWindow(
        recurrence=_recurrence_from(mapping, "window"),
        duration=_minutes_from(mapping, MAX_WINDOW_DURATION),
        timezone=_timezone_from(mapping),
    )


def _instant_from(data: Mapping[str, object], key: str) -> datetime:
    value = data.get(key)
    if not isinstance(value, str):
        raise InvalidSchedule(f"must be an ISO 8601 date-time with offset, not {value!r}", key)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidSchedule(f"{value!r} is not an ISO 8601 date-time", key) from exc
    return _utc(moment, key)


def parse_blackout(data: str | Mapping[str, object]) -> Blackout:
    """A blackout from its storage/API form: ``{"start": "2026-12-19T00:00:00+01:00",
    "end": "...", "reason": "..."}`` or a recurring one like a window (plus
    "reason"). InvalidSchedule names the bad key."""
    is_absolute = isinstance(data, Mapping) and ("start" in data or "end" in data)
    if isinstance(data, str):
        loaded = _mapping(data, "blackout", _ABSOLUTE_KEYS + _RECURRING_KEYS)
        return parse_blackout(loaded)
    if is_absolute:
        mapping = _mapping(data, "blackout", _ABSOLUTE_KEYS)
        return Blackout(
            start=_instant_from(mapping, "start"),
            end=_instant_from(mapping, "end"),
            reason=cast(str, mapping.get("reason", "")),
        )
    mapping = _mapping(data, "blackout", _RECURRING_KEYS)
    return Blackout(
        recurrence=_recurrence_from(mapping, "blackout"),
        duration=_minutes_from(mapping, MAX_BLACKOUT_DURATION),
        timezone=_timezone_from(mapping),
        reason=cast(str, mapping.get("reason", "")),
    )


def _each(
    value: object, what: str, parse: Callable[[str | Mapping[str, object]], _Item]
) -> list[_Item]:
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise InvalidSchedule(f"must be a list, not {value!r}", what)
    result: list[_Item] = []
    for position, item in enumerate(value):
        where = f"{what}[{position}]"
        try:
            # parse() checks the type itself: anything but text or a mapping is refused.
            result.append(parse(cast(Mapping[str, object], item)))
        except InvalidSchedule as exc:
            raise InvalidSchedule(
                exc.problem, f"{where}.{exc.field}" if exc.field else where
            ) from exc
    return result


def parse_schedule(data: str | Mapping[str, object]) -> Schedule:
    """A schedule from ``{"windows": [...], "blackouts": [...]}`` (a mapping or
    JSON text); either list may be left out. Errors name the item, e.g.
    ``windows[1].cron``."""
    mapping = _mapping(data, "schedule", ("windows", "blackouts"))
    windows = _each(mapping.get("windows", []), "windows", parse_window)
    blackouts = _each(mapping.get("blackouts", []), "blackouts", parse_blackout)
    return Schedule(tuple(windows), tuple(blackouts))
