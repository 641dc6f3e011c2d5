"""The rollout state machine (pure): limits, dispatching under concurrency,
order keys, site limits and maintenance windows, max errors, job timeouts,
soak and the promotion gate, sign-off, emergencies, rolling back, and
determinism. Every test builds frozen views and asserts the Step that
`advance` returns for a fixed, aware UTC instant: no clocks, no sleeps.

The maintenance window used throughout opens every Saturday at 02:00 UTC for
two hours; 2026-03-28 is a Saturday, so OPEN (03:00) is inside it and CLOSED
(05:00) is not.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patchwarden.errors import InvalidInput
from patchwarden.rollouts import (
    Blackout,
    MaintenanceWindow,
    Recurrence,
    Schedule,
    is_open,
    parse_schedule,
)
from patchwarden.rollouts.engine import (
    ACTIVE_JOB_STATES,
    ERROR_JOB_STATES,
    FINISHED_JOB_STATES,
    NEXT_IN_LINE,
    JobView,
    Limit,
    RingChange,
    RingPolicy,
    RingView,
    RolloutView,
    Step,
    advance,
    gate_failure,
)

OPEN = datetime(2026, 3, 28, 3, 0, tzinfo=UTC)
CLOSED = datetime(2026, 3, 28, 5, 0, tzinfo=UTC)
NOW = OPEN
HOUR = timedelta(hours=1)

SATURDAY_WINDOW = parse_schedule(
    {"windows": [{"cron": "0 2 * * 6", "duration_minutes": 120, "timezone": "UTC"}]}
)
ALWAYS_CLOSED = Schedule(
    (MaintenanceWindow(Recurrence.cron("0 2 * * 6"), timedelta(hours=2), "UTC"),),
    (Blackout.between(OPEN - timedelta(days=1), OPEN + timedelta(days=1), "freeze"),),
)


def _job(
    id: int,
    state: str = "pending",
    *,
    action: str = "install",
    order_key: int = 0,
    site: str | None = None,
    dispatched_at: datetime | None = None,
    finished_at: datetime | None = None,
    smoke_failed: bool = False,
    schedule: Schedule | None = None,
) -> JobView:
    if dispatched_at is None and state in ACTIVE_JOB_STATES:
        dispatched_at = NOW - timedelta(minutes=5)  # well inside the job timeout
    return JobView(
        id=id,
        action=action,
        state=state,
        order_key=order_key,
        site=site,
        dispatched_at=dispatched_at,
        finished_at=finished_at,
        smoke_failed=smoke_failed,
        schedule=schedule,
    )


def _jobs(
    ids: Iterable[int],
    state: str = "pending",
    *,
    action: str = "install",
    order_key: int = 0,
    site: str | None = None,
) -> tuple[JobView, ...]:
    return tuple(_job(i, state, action=action, order_key=order_key, site=site) for i in ids)


def _policy(
    concurrency: str = "100%",
    errors: str = "0",
    *,
    soak: timedelta = timedelta(0),
    min_success_percent: float = 100.0,
    require_signoff: bool = False,
    schedule: Schedule | None = None,
    site_limit: int | None = None,
) -> RingPolicy:
    return RingPolicy(
        max_concurrency=Limit.parse(concurrency, "max concurrency"),
        max_errors=Limit.parse(errors, "max errors"),
        soak=soak,
        min_success_percent=min_success_percent,
        require_signoff=require_signoff,
        schedule=schedule if schedule is not None else Schedule(),
        site_limit=site_limit,
    )


def _ring(
    id: int,
    jobs: Sequence[JobView] = (),
    state: str = "running",
    policy: RingPolicy | None = None,
    *,
    position: int | None = None,
    name: str | None = None,
    completed_at: datetime | None = None,
    signed_off: bool = False,
) -> RingView:
    return RingView(
        id=id,
        position=id if position is None else position,
        name=name or f"ring{id}",
        state=state,
        policy=policy or _policy(),
        jobs=tuple(jobs),
        completed_at=completed_at,
        signed_off=signed_off,
    )


def _rollout(
    *rings: RingView,
    state: str = "running",
    emergency: bool = False,
    job_timeout: timedelta = HOUR,
) -> RolloutView:
    return RolloutView(id=1, state=state, rings=rings, job_timeout=job_timeout, emergency=emergency)


def _finished(state: str, ids: Iterable[int], at: datetime = NOW - HOUR) -> tuple[JobView, ...]:
    return tuple(_job(i, state, finished_at=at) for i in ids)


# -- Limit ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5", Limit(5)),
        ("0", Limit(0)),
        ("10%", Limit(10, percent=True)),
        ("0%", Limit(0, percent=True)),
        ("100%", Limit(100, percent=True)),
        (" 7 ", Limit(7)),
        ("007", Limit(7)),
        ("999999", Limit(999999)),
    ],
)
def test_limit_parse(text: str, expected: Limit) -> None:
    assert Limit.parse(text, "max concurrency") == expected


@pytest.mark.parametrize(
    "text",
    ["-1", "10.5", "101%", "", "   ", "abc", "%", "5 %", "%5", "+5", "1e3", "1000000", "5%%", "٥"],
)
def test_limit_parse_rejects(text: str) -> None:
    with pytest.raises(InvalidInput, match="max errors"):
        Limit.parse(text, "max errors")


@pytest.mark.parametrize("value", [None, 5, 5.0])
def test_limit_parse_rejects_non_text(value: object) -> None:
    with pytest.raises(InvalidInput):
        Limit.parse(cast(str, value), "max concurrency")


@pytest.mark.parametrize("text", ["5", "0", "10%", "100%"])
def test_limit_str_round_trips(text: str) -> None:
    assert str(Limit.parse(text, "x")) == text
    assert Limit.parse(str(Limit.parse(text, "x")), "x") == Limit.parse(text, "x")


@pytest.mark.parametrize(
    ("limit", "total", "expected"),
    [
        ("10%", 15, 2),  # 1.5 rounds up
        ("10%", 10, 1),
        ("10%", 5, 1),  # 0.5 rounds up
        ("10%", 1, 1),
        ("10%", 0, 1),  # at least 1
        ("0%", 10, 1),
        ("1%", 1000, 10),
        ("1%", 1001, 11),
        ("50%", 3, 2),
        ("100%", 7, 7),
        ("0", 10, 1),  # at least 1
        ("1", 10, 1),
        ("5", 3, 5),  # a count is not capped by the number of jobs
    ],
)
def test_limit_concurrency_rounds_up_and_is_at_least_one(
    limit: str, total: int, expected: int
) -> None:
    assert Limit.parse(limit, "max concurrency").concurrency(total) == expected


@pytest.mark.parametrize(
    ("limit", "total", "expected"),
    [
        ("10%", 15, 1),  # 1.5 rounds down
        ("10%", 9, 0),
        ("10%", 20, 2),
        ("34%", 3, 1),
        ("50%", 3, 1),
        ("100%", 7, 7),
        ("0%", 100, 0),
        ("0", 100, 0),
        ("3", 1, 3),
    ],
)
def test_limit_errors_rounds_down(limit: str, total: int, expected: int) -> None:
    assert Limit.parse(limit, "max errors").errors(total) == expected


def test_default_policy() -> None:
    policy = RingPolicy()
    assert policy.max_concurrency == Limit(10, percent=True)
    assert policy.max_errors == Limit(0)
    assert policy.soak == timedelta(0)
    assert policy.min_success_percent == 100.0
    assert not policy.require_signoff
    assert policy.site_limit is None
    assert is_open(policy.schedule, NOW)


def test_schedules_used_here() -> None:
    assert is_open(SATURDAY_WINDOW, OPEN)
    assert not is_open(SATURDAY_WINDOW, CLOSED)
    assert not is_open(ALWAYS_CLOSED, OPEN)
    assert not is_open(ALWAYS_CLOSED, CLOSED)


# -- starting a ring and dispatching under max concurrency -------------------------------


def test_pending_ring_starts_and_dispatches_up_to_concurrency() -> None:
    ring = _ring(1, _jobs([1, 2, 3, 4, 5]), "pending", _policy("3"))
    step = advance(_rollout(ring), NOW)
    assert step == Step(dispatch=(1, 2, 3), rings=(RingChange(1, "running"),), soon=(4, 5))
    assert step.changes_anything


@pytest.mark.parametrize(
    ("concurrency", "active", "pending", "expected"),
    [
        ("3", [], [10, 11, 12, 13], (10, 11, 12)),
        ("3", [1], [10, 11, 12, 13], (10, 11)),
        ("3", [1, 2], [10, 11, 12, 13], (10,)),
        ("3", [1, 2, 3], [10, 11, 12, 13], ()),
        ("3", [1, 2, 3, 4], [10, 11], ()),  # over capacity already: nothing, no error
        ("5", [1], [10, 11], (10, 11)),  # fewer pending than capacity
        ("0", [], [10, 11], (10,)),  # a concurrency of 0 still means 1
    ],
)
def test_dispatch_counts_active_jobs(
    concurrency: str, active: list[int], pending: list[int], expected: tuple[int, ...]
) -> None:
    jobs = [_job(i, "dispatched" if i % 2 else "running") for i in active]
    jobs += [_job(i) for i in pending]
    step = advance(_rollout(_ring(1, jobs, "running", _policy(concurrency))), NOW)
    assert step.dispatch == expected
    assert step.rings == ()  # a running ring stays running: no change to store
    assert step.rollout_state is None


def test_nothing_to_do_when_at_capacity() -> None:
    jobs = [*_jobs([1, 2], "running"), *_jobs([3, 4])]
    step = advance(_rollout(_ring(1, jobs, "running", _policy("2"))), NOW)
    assert step == Step(soon=(3, 4))  # next in line: their agents poll sooner
    assert not step.changes_anything


def test_percentage_concurrency_of_ring_size() -> None:
    ring = _ring(1, _jobs(range(1, 16)), "pending", _policy("10%"))
    assert advance(_rollout(ring), NOW).dispatch == (1, 2)  # 10 % of 15 is 2


def test_percentage_concurrency_counts_finished_jobs_in_ring_size() -> None:
    jobs = [*_finished("succeeded", range(1, 11)), *_jobs(range(11, 21))]
    ring = _ring(1, jobs, "running", _policy("10%"))
    assert advance(_rollout(ring), NOW).dispatch == (11, 12)  # 10 % of 20


def test_dispatch_in_id_order_within_an_order_key() -> None:
    jobs = _jobs([9, 3, 7, 1, 5])
    step = advance(_rollout(_ring(1, jobs, "pending", _policy("3"))), NOW)
    assert step.dispatch == (1, 3, 5)


def test_rollback_jobs_of_a_running_ring_are_not_dispatched() -> None:
    jobs = [_job(1, action="rollback"), _job(2)]
    step = advance(_rollout(_ring(1, jobs, "running")), NOW)
    assert step.dispatch == (2,)


def test_dispatch_only_in_the_first_ring_that_has_not_passed() -> None:
    first = _ring(1, _finished("succeeded", [1]), "passed")
    second = _ring(2, _jobs([2, 3]), "pending")
    third = _ring(3, _jobs([4, 5]), "pending")
    step = advance(_rollout(first, second, third), NOW)
    assert step == Step(dispatch=(2, 3), rings=(RingChange(2, "running"),))


def test_rings_are_taken_by_position_not_by_tuple_order() -> None:
    late = _ring(1, _jobs([1]), "pending", position=2)
    early = _ring(2, _jobs([2]), "pending", position=1)
    step = advance(_rollout(late, early), NOW)
    assert step == Step(dispatch=(2,), rings=(RingChange(2, "running"),))


# -- order keys ----------------------------------------------------------------------


def test_later_order_key_waits_for_earlier_key_to_be_dispatched() -> None:
    database = _jobs([1, 2], order_key=0)
    application = _jobs([3, 4], order_key=10)
    step = advance(_rollout(_ring(1, [*application, *database], "pending")), NOW)
    assert step.dispatch == (1, 2)


def test_later_order_key_waits_while_earlier_jobs_are_active() -> None:
    database = [_job(1, "succeeded", finished_at=NOW), _job(2, "running")]
    application = _jobs([3, 4], order_key=10)
    step = advance(_rollout(_ring(1, [*database, *application], "running")), NOW)
    assert step == Step()  # capacity left, but the database is not done


def test_later_order_key_waits_while_earlier_jobs_are_pending_but_blocked() -> None:
    # The database job may not start (its asset's window is closed); the
    # application jobs must still wait for it.
    database = _job(1, order_key=0, schedule=ALWAYS_CLOSED)
    application = _jobs([2, 3], order_key=10)
    step = advance(_rollout(_ring(1, [database, *application], "running")), NOW)
    assert step.dispatch == ()


@pytest.mark.parametrize("done", ["succeeded", "cancelled", "failed", "timed_out", "refused"])
def test_later_order_key_starts_once_earlier_keys_finished(done: str) -> None:
    database = [_job(1, "succeeded", finished_at=NOW), _job(2, done, finished_at=NOW)]
    application = _jobs([3, 4], order_key=10)
    ring = _ring(1, [*database, *application], "running", _policy(errors="1"))
    assert advance(_rollout(ring), NOW).dispatch == (3, 4)


def test_order_keys_in_three_tiers_and_lowest_key_first() -> None:
    jobs = [_job(1, order_key=5), _job(2, order_key=1), _job(3, order_key=9), _job(4, order_key=1)]
    assert advance(_rollout(_ring(1, jobs, "pending")), NOW).dispatch == (2, 4)
    jobs = [_job(1, order_key=5), *_finished("succeeded", [2, 4]), _job(3, order_key=9)]
    assert advance(_rollout(_ring(1, jobs, "running")), NOW).dispatch == (1,)
    jobs = [*_finished("succeeded", [1, 2, 4]), _job(3, order_key=9)]
    assert advance(_rollout(_ring(1, jobs, "running")), NOW).dispatch == (3,)


def test_order_key_capacity_is_not_spent_on_later_keys() -> None:
    jobs = [_job(1, order_key=0), _job(2, order_key=1), _job(3, order_key=1)]
    step = advance(_rollout(_ring(1, jobs, "pending", _policy("3"))), NOW)
    assert step.dispatch == (1,)


# -- site limit ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("site_limit", "expected"),
    [
        (None, (1, 2, 3, 4, 5, 6)),
        (1, (1, 4, 6)),
        (2, (1, 2, 4, 5, 6)),
        (3, (1, 2, 3, 4, 5, 6)),
    ],
)
def test_site_limit_per_site(site_limit: int | None, expected: tuple[int, ...]) -> None:
    jobs = [
        _job(1, site="berlin"),
        _job(2, site="berlin"),
        _job(3, site="berlin"),
        _job(4, site="paris"),
        _job(5, site="paris"),
        _job(6),  # no site: no site limit
    ]
    policy = _policy(site_limit=site_limit)
    assert advance(_rollout(_ring(1, jobs, "pending", policy)), NOW).dispatch == expected


def test_site_limit_counts_active_jobs_at_the_site() -> None:
    jobs = [
        _job(1, "running", site="berlin"),
        _job(2, site="berlin"),
        _job(3, site="paris"),
        _job(4, site="berlin"),
    ]
    step = advance(_rollout(_ring(1, jobs, "running", _policy(site_limit=1))), NOW)
    assert step.dispatch == (3,)


def test_site_limit_skipped_jobs_do_not_use_capacity() -> None:
    jobs = [_job(1, site="a"), _job(2, site="a"), _job(3, site="b"), _job(4, site="c")]
    step = advance(_rollout(_ring(1, jobs, "pending", _policy("2", site_limit=1))), NOW)
    assert step.dispatch == (1, 3)


def test_site_limit_finished_jobs_do_not_count() -> None:
    jobs = [_job(1, "succeeded", site="a", finished_at=NOW), _job(2, site="a")]
    step = advance(_rollout(_ring(1, jobs, "running", _policy(site_limit=1))), NOW)
    assert step.dispatch == (2,)


# -- maintenance windows -----------------------------------------------------------------


def test_closed_window_dispatches_nothing_but_the_ring_starts() -> None:
    ring = _ring(1, _jobs([1, 2]), "pending", _policy(schedule=SATURDAY_WINDOW))
    assert advance(_rollout(ring), CLOSED) == Step(rings=(RingChange(1, "running"),))


def test_open_window_dispatches() -> None:
    ring = _ring(1, _jobs([1, 2]), "pending", _policy(schedule=SATURDAY_WINDOW))
    step = advance(_rollout(ring), OPEN)
    assert step == Step(dispatch=(1, 2), rings=(RingChange(1, "running"),))


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (datetime(2026, 3, 28, 2, 0, tzinfo=UTC), (1,)),  # the window's start is inside
        (datetime(2026, 3, 28, 3, 59, 59, tzinfo=UTC), (1,)),
        (datetime(2026, 3, 28, 4, 0, tzinfo=UTC), ()),  # its end is not
        (datetime(2026, 3, 28, 1, 59, 59, tzinfo=UTC), ()),
        (datetime(2026, 3, 27, 3, 0, tzinfo=UTC), ()),  # Friday
        (datetime(2026, 4, 4, 3, 0, tzinfo=UTC), (1,)),  # the next Saturday
    ],
)
def test_window_boundaries(now: datetime, expected: tuple[int, ...]) -> None:
    ring = _ring(1, _jobs([1]), "running", _policy(schedule=SATURDAY_WINDOW))
    assert advance(_rollout(ring), now).dispatch == expected


def test_window_closing_does_not_affect_active_jobs() -> None:
    jobs = [_job(1, "running", dispatched_at=CLOSED - timedelta(minutes=5)), _job(2)]
    ring = _ring(1, jobs, "running", _policy(schedule=SATURDAY_WINDOW))
    assert advance(_rollout(ring), CLOSED) == Step()


def test_blackout_overrides_window() -> None:
    schedule = Schedule(
        SATURDAY_WINDOW.windows,
        (Blackout.between(OPEN - timedelta(minutes=30), OPEN + timedelta(minutes=30), "freeze"),),
    )
    ring = _ring(1, _jobs([1]), "running", _policy(schedule=schedule))
    assert advance(_rollout(ring), OPEN).dispatch == ()
    assert advance(_rollout(ring), OPEN + timedelta(minutes=30)).dispatch == (1,)


def test_blackout_without_windows() -> None:
    schedule = Schedule(blackouts=(Blackout.between(OPEN, OPEN + HOUR),))
    ring = _ring(1, _jobs([1]), "running", _policy(schedule=schedule))
    assert advance(_rollout(ring), OPEN).dispatch == ()
    assert advance(_rollout(ring), OPEN - timedelta(seconds=1)).dispatch == (1,)
    assert advance(_rollout(ring), OPEN + HOUR).dispatch == (1,)


def test_recurring_blackout_overrides_window() -> None:
    schedule = Schedule(
        SATURDAY_WINDOW.windows,
        (Blackout.recurring(Recurrence.cron("0 3 * * *"), HOUR, "UTC", "nightly backup"),),
    )
    ring = _ring(1, _jobs([1]), "running", _policy(schedule=schedule))
    assert advance(_rollout(ring), OPEN).dispatch == ()
    assert advance(_rollout(ring), OPEN - timedelta(minutes=30)).dispatch == (1,)


def test_asset_schedule_blocks_only_that_job() -> None:
    jobs = [
        _job(1, schedule=SATURDAY_WINDOW),  # closed at CLOSED
        _job(2),  # no schedule of its own
        _job(3, schedule=Schedule()),  # an empty schedule is always open
        _job(4, schedule=ALWAYS_CLOSED),
    ]
    step = advance(_rollout(_ring(1, jobs, "pending")), CLOSED)
    assert step.dispatch == (2, 3)
    assert advance(_rollout(_ring(1, jobs, "pending")), OPEN).dispatch == (1, 2, 3)


def test_asset_schedule_blocked_job_does_not_use_capacity() -> None:
    jobs = [_job(1, schedule=ALWAYS_CLOSED), _job(2), _job(3)]
    step = advance(_rollout(_ring(1, jobs, "running", _policy("1"))), NOW)
    assert step.dispatch == (2,)


def test_asset_schedule_cannot_open_a_closed_ring_window() -> None:
    jobs = [_job(1, schedule=Schedule())]
    ring = _ring(1, jobs, "running", _policy(schedule=SATURDAY_WINDOW))
    assert advance(_rollout(ring), CLOSED).dispatch == ()


def test_emergency_ignores_windows() -> None:
    jobs = [_job(1, schedule=ALWAYS_CLOSED), _job(2)]
    ring = _ring(1, jobs, "pending", _policy(schedule=ALWAYS_CLOSED))
    assert advance(_rollout(ring), CLOSED).dispatch == ()
    step = advance(_rollout(ring, emergency=True), CLOSED)
    assert step == Step(dispatch=(1, 2), rings=(RingChange(1, "running"),))


def test_emergency_keeps_concurrency_order_and_site_limits() -> None:
    jobs = [
        _job(1, site="a"),
        _job(2, site="a"),
        _job(3, site="b"),
        _job(4, site="c"),
        _job(5, order_key=1),
    ]
    policy = _policy("2", site_limit=1, schedule=ALWAYS_CLOSED)
    step = advance(_rollout(_ring(1, jobs, "running", policy), emergency=True), NOW)
    assert step.dispatch == (1, 3)


# -- max errors ----------------------------------------------------------------------


def test_max_errors_zero_halts_at_first_failure() -> None:
    jobs = [_job(1, "failed", finished_at=NOW), *_jobs([2, 3])]
    ring = _ring(1, jobs, "running", _policy(errors="0"), name="canary")
    step = advance(_rollout(ring), NOW)
    reason = "1 failed job(s), more than max errors 0"
    assert step == Step(
        rings=(RingChange(1, "failed", reason),),
        rollout_state="halted",
        reason=f"ring canary: {reason}",
    )
    assert "max errors" in step.reason


def test_max_errors_one_tolerates_one() -> None:
    jobs = [_job(1, "failed", finished_at=NOW), *_jobs([2, 3])]
    ring = _ring(1, jobs, "running", _policy(errors="1"))
    step = advance(_rollout(ring), NOW)
    assert step == Step(dispatch=(2, 3))


def test_max_errors_one_halts_at_the_second() -> None:
    jobs = [*_finished("failed", [1]), *_finished("refused", [2]), *_jobs([3])]
    ring = _ring(1, jobs, "running", _policy(errors="1"), name="wave")
    step = advance(_rollout(ring), NOW)
    assert step.dispatch == ()
    assert step.rings == (RingChange(1, "failed", "2 failed job(s), more than max errors 1"),)
    assert step.rollout_state == "halted"
    assert step.reason == "ring wave: 2 failed job(s), more than max errors 1"


@pytest.mark.parametrize(
    ("total", "failed", "halts"),
    [
        (20, 2, False),  # 10 % of 20 = 2 tolerated
        (20, 3, True),
        (15, 1, False),  # 10 % of 15 = 1 (rounded down)
        (15, 2, True),
        (9, 1, True),  # 10 % of 9 = 0
    ],
)
def test_percentage_max_errors(total: int, failed: int, halts: bool) -> None:
    jobs = [*_finished("failed", range(1, failed + 1)), *_jobs(range(failed + 1, total + 1))]
    ring = _ring(1, jobs, "running", _policy("1", "10%"))
    step = advance(_rollout(ring), NOW)
    if halts:
        assert step.rollout_state == "halted"
        assert step.rings[0].state == "failed"
        assert "more than max errors 10%" in step.reason
        assert step.dispatch == ()
    else:
        assert step.rollout_state is None
        assert step.dispatch == (failed + 1,)


@pytest.mark.parametrize("state", sorted(ERROR_JOB_STATES))
def test_each_error_state_counts(state: str) -> None:
    jobs = [_job(1, state, finished_at=NOW), _job(2)]
    step = advance(_rollout(_ring(1, jobs, "running")), NOW)
    assert step.rollout_state == "halted"
    assert step.rings == (RingChange(1, "failed", "1 failed job(s), more than max errors 0"),)


def test_error_states_are_the_documented_ones() -> None:
    assert {"failed", "rolled_back", "rollback_failed", "refused", "timed_out"} == ERROR_JOB_STATES
    assert {"succeeded", "cancelled"} == FINISHED_JOB_STATES - ERROR_JOB_STATES


@pytest.mark.parametrize("state", ["succeeded", "cancelled", "dispatched", "running"])
def test_other_states_are_not_errors(state: str) -> None:
    jobs = [_job(1, state, finished_at=NOW if state in FINISHED_JOB_STATES else None), _job(2)]
    step = advance(_rollout(_ring(1, jobs, "running")), NOW)
    assert step.rollout_state is None
    assert step.dispatch == (2,)


def test_failed_rollback_jobs_do_not_count_as_install_errors() -> None:
    jobs = [_job(1, "failed", action="rollback", finished_at=NOW), _job(2)]
    step = advance(_rollout(_ring(1, jobs, "running")), NOW)
    assert step == Step(dispatch=(2,))


def test_max_errors_checked_when_pending_ring_starts() -> None:
    # A ring may hold finished jobs before it starts (e.g. refused by the agent).
    jobs = [_job(1, "refused", finished_at=NOW), _job(2)]
    step = advance(_rollout(_ring(1, jobs, "pending", name="canary")), NOW)
    assert step.rings == (RingChange(1, "failed", "1 failed job(s), more than max errors 0"),)
    assert step.rollout_state == "halted"
    assert step.dispatch == ()


def test_max_errors_checked_after_all_jobs_finished() -> None:
    jobs = [*_finished("succeeded", [1, 2]), *_finished("failed", [3])]
    step = advance(_rollout(_ring(1, jobs, "running")), NOW)
    assert step.rollout_state == "halted"
    assert step.rings == (RingChange(1, "failed", "1 failed job(s), more than max errors 0"),)


# -- job timeouts --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dispatched_at", "times_out"),
    [
        (NOW - HOUR, True),  # exactly at the timeout
        (NOW - 2 * HOUR, True),
        (NOW - HOUR + timedelta(seconds=1), False),
        (NOW, False),
    ],
)
def test_job_timeout_boundary(dispatched_at: datetime, times_out: bool) -> None:
    jobs = [_job(1, "running", dispatched_at=dispatched_at), _job(2)]
    ring = _ring(1, jobs, "running", _policy("1", "1"))
    step = advance(_rollout(ring, job_timeout=HOUR), NOW)
    assert step.time_out == ((1,) if times_out else ())
    # The timed-out job frees its slot in the same step.
    assert step.dispatch == ((2,) if times_out else ())


@pytest.mark.parametrize("job_state", sorted(ACTIVE_JOB_STATES))
@pytest.mark.parametrize(
    "rollout_state",
    ["running", "paused", "halted", "rolling_back", "draft", "completed", "aborted"],
)
def test_active_jobs_time_out_in_any_rollout_state(job_state: str, rollout_state: str) -> None:
    jobs = [_job(1, job_state, dispatched_at=NOW - 3 * HOUR), _job(2, job_state)]
    ring = _ring(1, jobs, "running", _policy(errors="5"))
    step = advance(_rollout(ring, state=rollout_state), NOW)
    assert step.time_out == (1,)


def test_timeouts_in_a_paused_rollout_change_nothing_else() -> None:
    jobs = [_job(1, "running", dispatched_at=NOW - 3 * HOUR), _job(2)]
    step = advance(_rollout(_ring(1, jobs, "running"), state="paused"), NOW)
    assert step == Step(time_out=(1,))
    assert step.changes_anything


def test_only_active_jobs_time_out() -> None:
    long_ago = NOW - 10 * HOUR
    jobs = [
        _job(1, "pending"),
        JobView(2, "install", "pending", dispatched_at=long_ago),  # odd, but not in flight
        _job(3, "succeeded", dispatched_at=long_ago, finished_at=NOW),
        _job(4, "failed", dispatched_at=long_ago, finished_at=NOW),
        JobView(5, "install", "running", dispatched_at=None),  # no dispatch time: never
        _job(6, "dispatched", dispatched_at=long_ago),
    ]
    ring = _ring(1, jobs, "running", _policy(errors="10"), name="r")
    step = advance(_rollout(ring, state="paused"), NOW)
    assert step.time_out == (6,)


def test_job_timeout_uses_the_rollouts_timeout() -> None:
    jobs = [_job(1, "running", dispatched_at=NOW - timedelta(minutes=10))]
    ring = _ring(1, jobs, "running", _policy(errors="1"))
    assert advance(_rollout(ring, job_timeout=timedelta(minutes=10)), NOW).time_out == (1,)
    assert advance(_rollout(ring, job_timeout=timedelta(minutes=11)), NOW).time_out == ()


def test_timeouts_in_every_ring_including_rollback_jobs() -> None:
    old = NOW - 2 * HOUR
    first = _ring(1, [_job(1, "running", dispatched_at=old)], "passed")
    second = _ring(2, [_job(2, "running", action="rollback", dispatched_at=old)], "rolling_back")
    third = _ring(3, [_job(3, "dispatched", dispatched_at=old)], "running", _policy(errors="1"))
    step = advance(_rollout(first, second, third, state="halted"), NOW)
    assert sorted(step.time_out) == [1, 2, 3]
    assert step.rings == ()
    assert step.rollout_state is None


def test_timeout_counts_as_error_in_the_same_step() -> None:
    jobs = [_job(1, "running", dispatched_at=NOW - 2 * HOUR), _job(2)]
    step = advance(_rollout(_ring(1, jobs, "running", name="canary")), NOW)
    reason = "1 failed job(s), more than max errors 0"
    assert step == Step(
        time_out=(1,),
        rings=(RingChange(1, "failed", reason),),
        rollout_state="halted",
        reason=f"ring canary: {reason}",
    )


def test_timeout_plus_stored_failure_exceeds_max_errors() -> None:
    jobs = [
        _job(1, "failed", finished_at=NOW - HOUR),
        _job(2, "running", dispatched_at=NOW - 2 * HOUR),
        _job(3),
    ]
    step = advance(_rollout(_ring(1, jobs, "running", _policy(errors="1"))), NOW)
    assert step.time_out == (2,)
    assert step.rings == (RingChange(1, "failed", "2 failed job(s), more than max errors 1"),)
    assert step.rollout_state == "halted"


def test_timeout_of_the_last_job_starts_the_soak_now() -> None:
    # The timed-out job finishes now (the service stores finished_at = now),
    # so the soak runs from now, not from the previous job's end.
    jobs = [
        _job(1, "succeeded", finished_at=NOW - 2 * HOUR),
        _job(2, "running", dispatched_at=NOW - HOUR),
    ]
    policy = _policy(errors="1", soak=timedelta(minutes=30), min_success_percent=50)
    step = advance(_rollout(_ring(1, jobs, "running", policy)), NOW)
    assert step == Step(time_out=(2,), rings=(RingChange(1, "soaking", completed_at=NOW),))


# -- soak and the promotion gate -------------------------------------------------------


def test_all_finished_starts_soak_with_latest_finish() -> None:
    jobs = [
        _job(1, "succeeded", finished_at=NOW - 3 * HOUR),
        _job(2, "succeeded", finished_at=NOW - timedelta(minutes=20)),
        _job(3, "succeeded", finished_at=NOW - 2 * HOUR),
    ]
    ring = _ring(1, jobs, "running", _policy(soak=HOUR))
    step = advance(_rollout(ring), NOW)
    latest = NOW - timedelta(minutes=20)
    assert step == Step(rings=(RingChange(1, "soaking", completed_at=latest),))


def test_nothing_during_soak() -> None:
    ring = _ring(
        1,
        _finished("succeeded", [1, 2]),
        "soaking",
        _policy(soak=HOUR),
        completed_at=NOW - timedelta(minutes=59),
    )
    nxt = _ring(2, _jobs([3]), "pending")
    assert advance(_rollout(ring, nxt), NOW) == Step()


def test_soak_elapsed_passes_and_next_ring_starts_in_same_step() -> None:
    completed = NOW - HOUR
    jobs = _finished("succeeded", [1, 2])
    ring = _ring(1, jobs, "soaking", _policy(soak=HOUR), completed_at=completed)
    nxt = _ring(2, _jobs([3, 4, 5]), "pending", _policy("2"))
    step = advance(_rollout(ring, nxt), NOW)
    assert step == Step(
        dispatch=(3, 4),
        rings=(RingChange(1, "passed", completed_at=completed), RingChange(2, "running")),
        soon=(5,),
    )


def test_soak_and_pass_in_one_step_when_soak_already_over() -> None:
    finished = NOW - 2 * HOUR
    ring = _ring(1, _finished("succeeded", [1], finished), "running", _policy(soak=HOUR))
    nxt = _ring(2, _jobs([2]), "pending")
    step = advance(_rollout(ring, nxt), NOW)
    assert step == Step(
        dispatch=(2,),
        rings=(RingChange(1, "passed", completed_at=finished), RingChange(2, "running")),
    )


def test_zero_soak_passes_at_once() -> None:
    ring = _ring(1, _finished("succeeded", [1], NOW), "running")
    step = advance(_rollout(ring), NOW)
    assert step == Step(
        rings=(RingChange(1, "passed", completed_at=NOW),), rollout_state="completed"
    )


def test_next_ring_waits_in_its_window_after_a_pass() -> None:
    ring = _ring(1, _finished("succeeded", [1]), "running")
    nxt = _ring(2, _jobs([2]), "pending", _policy(schedule=SATURDAY_WINDOW))
    step = advance(_rollout(ring, nxt), CLOSED)
    assert step.dispatch == ()
    assert step.rings == (
        RingChange(1, "passed", completed_at=NOW - HOUR),
        RingChange(2, "running"),
    )


@pytest.mark.parametrize(
    ("succeeded", "failed", "cancelled", "min_success", "reason"),
    [
        (1, 1, 0, 100.0, "success rate 50.0% (1 of 2) is below 100%"),
        (1, 1, 0, 50.0, ""),
        (1, 1, 0, 50.1, "success rate 50.0% (1 of 2) is below 50.1%"),
        (2, 1, 0, 66.6, ""),
        (2, 1, 0, 67.0, "success rate 66.7% (2 of 3) is below 67%"),
        (1, 0, 3, 100.0, ""),  # cancelled jobs are left out
        (0, 1, 1, 0.0, ""),
        (9, 1, 0, 90.0, ""),
        (8, 2, 0, 90.0, "success rate 80.0% (8 of 10) is below 90%"),
    ],
)
def test_success_rate_gate(
    succeeded: int, failed: int, cancelled: int, min_success: float, reason: str
) -> None:
    jobs = [
        *_finished("succeeded", range(1, succeeded + 1)),
        *_finished("failed", range(100, 100 + failed)),
        *_finished("cancelled", range(200, 200 + cancelled)),
    ]
    policy = _policy(errors="100%", min_success_percent=min_success)
    ring = _ring(1, jobs, "running", policy, name="canary")
    assert gate_failure(ring) == reason
    step = advance(_rollout(ring, _ring(2, _jobs([300]), "pending")), NOW)
    if reason:
        assert step == Step(
            rings=(RingChange(1, "failed", reason),),
            rollout_state="halted",
            reason=f"ring canary: promotion gate: {reason}",
        )
    else:
        assert step.rings[0] == RingChange(1, "passed", completed_at=NOW - HOUR)
        assert step.dispatch == (300,)


def test_smoke_failure_fails_gate_even_when_success_rate_allows() -> None:
    jobs = [
        *_finished("succeeded", [1, 2]),
        _job(3, "succeeded", finished_at=NOW - HOUR, smoke_failed=True),
    ]
    ring = _ring(1, jobs, "running", _policy(min_success_percent=0), name="canary")
    step = advance(_rollout(ring), NOW)
    assert step == Step(
        rings=(RingChange(1, "failed", "1 job(s) failed a smoke test"),),
        rollout_state="halted",
        reason="ring canary: promotion gate: 1 job(s) failed a smoke test",
    )


def test_smoke_failure_of_a_cancelled_job_is_ignored() -> None:
    jobs = [
        *_finished("succeeded", [1]),
        _job(2, "cancelled", finished_at=NOW - HOUR, smoke_failed=True),
    ]
    assert gate_failure(_ring(1, jobs)) == ""


def test_gate_of_a_ring_without_install_jobs() -> None:
    assert gate_failure(_ring(1, ())) == ""
    assert gate_failure(_ring(1, _finished("cancelled", [1, 2]))) == ""
    rollback_only = (_job(1, "failed", action="rollback", finished_at=NOW),)
    assert gate_failure(_ring(1, rollback_only)) == ""


def test_gate_checked_after_soak() -> None:
    jobs = [*_finished("succeeded", [1]), _job(2, "succeeded", finished_at=NOW, smoke_failed=True)]
    ring = _ring(1, jobs, "running", _policy(soak=HOUR))
    step = advance(_rollout(ring), NOW)
    assert step == Step(rings=(RingChange(1, "soaking", completed_at=NOW),))
    soaking = _ring(1, jobs, "soaking", _policy(soak=HOUR), completed_at=NOW)
    assert advance(_rollout(soaking), NOW + HOUR).rollout_state == "halted"


def test_require_signoff_waits_for_approver() -> None:
    policy = _policy(require_signoff=True)
    ring = _ring(1, _finished("succeeded", [1]), "running", policy)
    nxt = _ring(2, _jobs([2]), "pending")
    step = advance(_rollout(ring, nxt), NOW)
    assert step == Step(
        rings=(RingChange(1, "awaiting_signoff", "waiting for an approver's sign-off"),)
    )
    waiting = _ring(1, ring.jobs, "awaiting_signoff", policy, completed_at=NOW - HOUR)
    assert advance(_rollout(waiting, nxt), NOW + HOUR) == Step()


def test_signoff_passes_and_starts_next_ring() -> None:
    policy = _policy(require_signoff=True)
    completed = NOW - HOUR
    signed = _ring(
        1,
        _finished("succeeded", [1]),
        "awaiting_signoff",
        policy,
        completed_at=completed,
        signed_off=True,
    )
    nxt = _ring(2, _jobs([2]), "pending")
    step = advance(_rollout(signed, nxt), NOW)
    assert step == Step(
        dispatch=(2,),
        rings=(RingChange(1, "passed", completed_at=completed), RingChange(2, "running")),
    )


def test_signoff_given_early_passes_after_soak() -> None:
    policy = _policy(soak=HOUR, require_signoff=True)
    ring = _ring(
        1, _finished("succeeded", [1]), "soaking", policy, completed_at=NOW, signed_off=True
    )
    assert advance(_rollout(ring), NOW) == Step()
    step = advance(_rollout(ring), NOW + HOUR)
    assert step == Step(
        rings=(RingChange(1, "passed", completed_at=NOW),), rollout_state="completed"
    )


def test_signoff_does_not_override_a_failed_gate() -> None:
    jobs = (_job(1, "succeeded", finished_at=NOW, smoke_failed=True),)
    policy = _policy(require_signoff=True)
    ring = _ring(1, jobs, "awaiting_signoff", policy, completed_at=NOW, signed_off=True)
    step = advance(_rollout(ring), NOW)
    assert step.rings == (RingChange(1, "failed", "1 job(s) failed a smoke test"),)
    assert step.rollout_state == "halted"


def test_emergency_skips_soak() -> None:
    policy = _policy(soak=timedelta(days=2))
    ring = _ring(1, _finished("succeeded", [1], NOW), "running", policy)
    nxt = _ring(2, _jobs([2]), "pending", policy)
    assert advance(_rollout(ring, nxt), NOW) == Step(
        rings=(RingChange(1, "soaking", completed_at=NOW),)
    )
    step = advance(_rollout(ring, nxt, emergency=True), NOW)
    assert step == Step(
        dispatch=(2,),
        rings=(RingChange(1, "passed", completed_at=NOW), RingChange(2, "running")),
    )
    soaking = _ring(1, ring.jobs, "soaking", policy, completed_at=NOW)
    assert advance(_rollout(soaking, nxt, emergency=True), NOW).rings[0].state == "passed"


def test_emergency_still_needs_signoff_and_gate() -> None:
    policy = _policy(require_signoff=True)
    ring = _ring(1, _finished("succeeded", [1], NOW), "running", policy)
    step = advance(_rollout(ring, emergency=True), NOW)
    assert step.rings == (RingChange(1, "awaiting_signoff", "waiting for an approver's sign-off"),)
    smoky = _ring(1, (_job(1, "succeeded", finished_at=NOW, smoke_failed=True),), "running")
    assert advance(_rollout(smoky, emergency=True), NOW).rollout_state == "halted"


def test_last_ring_passed_completes_rollout() -> None:
    first = _ring(1, _finished("succeeded", [1]), "passed", completed_at=NOW - 2 * HOUR)
    last = _ring(2, _finished("succeeded", [2], NOW - HOUR), "running")
    step = advance(_rollout(first, last), NOW)
    assert step == Step(
        rings=(RingChange(2, "passed", completed_at=NOW - HOUR),), rollout_state="completed"
    )


def test_all_rings_passed_completes_rollout() -> None:
    rings = [_ring(i, _finished("succeeded", [i]), "passed") for i in (1, 2, 3)]
    assert advance(_rollout(*rings), NOW) == Step(rollout_state="completed")


def test_all_rings_pass_in_one_step() -> None:
    rings = [_ring(i, _finished("succeeded", [i]), "running") for i in (1, 2)]
    rings.append(_ring(3, (), "pending"))
    step = advance(_rollout(*rings), NOW)
    assert step == Step(
        rings=(
            RingChange(1, "passed", completed_at=NOW - HOUR),
            RingChange(2, "passed", completed_at=NOW - HOUR),
            RingChange(3, "passed", completed_at=NOW),
        ),
        rollout_state="completed",
    )


def test_ring_with_no_jobs_passes_at_once() -> None:
    empty = _ring(1, (), "pending")
    nxt = _ring(2, _jobs([1, 2]), "pending")
    step = advance(_rollout(empty, nxt), NOW)
    assert step == Step(
        dispatch=(1, 2),
        rings=(RingChange(1, "passed", completed_at=NOW), RingChange(2, "running")),
    )
    assert advance(_rollout(empty), NOW) == Step(
        rings=(RingChange(1, "passed", completed_at=NOW),), rollout_state="completed"
    )


def test_ring_of_cancelled_jobs_passes() -> None:
    ring = _ring(1, _finished("cancelled", [1, 2], NOW - HOUR), "running")
    step = advance(_rollout(ring), NOW)
    assert step == Step(
        rings=(RingChange(1, "passed", completed_at=NOW - HOUR),), rollout_state="completed"
    )


def test_finished_jobs_without_finish_time_soak_from_now() -> None:
    ring = _ring(1, _jobs([1], "succeeded"), "running", _policy(soak=HOUR))
    step = advance(_rollout(ring), NOW)
    assert step == Step(rings=(RingChange(1, "soaking", completed_at=NOW),))


@pytest.mark.parametrize("state", ["failed", "cancelled", "rolling_back", "rolled_back"])
def test_stopped_ring_stops_a_running_rollout(state: str) -> None:
    ring = _ring(1, _finished("failed", [1]), state)
    nxt = _ring(2, _jobs([2]), "pending")
    assert advance(_rollout(ring, nxt), NOW) == Step()


# -- rollout states that do nothing --------------------------------------------------------


@pytest.mark.parametrize(
    "state", ["paused", "halted", "draft", "completed", "aborted", "rolled_back", "scheduled"]
)
def test_non_running_rollouts_dispatch_nothing(state: str) -> None:
    rings = (
        _ring(1, _finished("succeeded", [1]), "running"),
        _ring(2, _jobs([2, 3]), "pending"),
        _ring(3, _jobs([4], "pending", action="rollback"), "rolling_back"),
    )
    assert advance(_rollout(*rings, state=state), NOW) == Step()
    assert advance(_rollout(*rings, state=state, emergency=True), NOW) == Step()


# -- rolling back --------------------------------------------------------------------


def test_rollback_jobs_dispatched_under_concurrency_ignoring_windows_and_order() -> None:
    jobs = [
        _job(1, "running", action="rollback", order_key=0),
        _job(2, action="rollback", order_key=10, schedule=ALWAYS_CLOSED),
        _job(3, action="rollback", order_key=5),
        _job(4, action="rollback", order_key=10),
        _job(5, action="install"),  # the install jobs are not touched
    ]
    policy = _policy("3", schedule=ALWAYS_CLOSED)
    ring = _ring(1, jobs, "rolling_back", policy)
    step = advance(_rollout(ring, state="rolling_back"), NOW)
    assert step == Step(dispatch=(3, 2), soon=(4,))  # (order key, id) order, 1 slot taken


def test_rollback_concurrency_percentage_of_rollback_jobs() -> None:
    jobs = [*_jobs(range(1, 11), action="rollback"), *_finished("succeeded", range(11, 31))]
    ring = _ring(1, jobs, "rolling_back", _policy("20%"))
    step = advance(_rollout(ring, state="rolling_back"), NOW)
    assert step.dispatch == (1, 2)  # 20 % of the 10 rollback jobs


def test_rollback_dispatches_in_every_ring_being_rolled_back() -> None:
    rings = (
        _ring(1, _jobs([1, 2], action="rollback"), "rolling_back", _policy("1")),
        _ring(2, _jobs([3], action="rollback"), "passed"),  # not being rolled back
        _ring(3, _jobs([4, 5], action="rollback"), "rolling_back"),
    )
    step = advance(_rollout(*rings, state="rolling_back"), NOW)
    assert step == Step(dispatch=(1, 4, 5), soon=(2,))


def test_rollback_waits_for_active_jobs() -> None:
    ring = _ring(1, _jobs([1], "running", action="rollback"), "rolling_back")
    assert advance(_rollout(ring, state="rolling_back"), NOW) == Step()


def test_rollback_finished_rolls_back_the_rollout() -> None:
    def undone(*ids: int) -> tuple[JobView, ...]:
        return tuple(_job(i, "succeeded", action="rollback", finished_at=NOW) for i in ids)

    rings = (
        _ring(1, (*_finished("succeeded", [1, 2]), *undone(3, 4)), "rolling_back"),
        _ring(2, undone(5), "rolling_back"),
        _ring(3, _jobs([6]), "cancelled"),
        _ring(4, (), "rolled_back"),
    )
    step = advance(_rollout(*rings, state="rolling_back"), NOW)
    assert step == Step(
        rings=(RingChange(1, "rolled_back"), RingChange(2, "rolled_back")),
        rollout_state="rolled_back",
    )


def test_rollback_counts_failures_in_the_reason() -> None:
    jobs = [
        _job(1, "succeeded", action="rollback", finished_at=NOW),
        _job(2, "failed", action="rollback", finished_at=NOW),
        _job(3, "rollback_failed", action="rollback", finished_at=NOW),
        _job(4, "failed", finished_at=NOW),  # an install job: not counted
    ]
    ring = _ring(1, jobs, "rolling_back", name="canary")
    step = advance(_rollout(ring, state="rolling_back"), NOW)
    assert step == Step(
        rings=(RingChange(1, "rolled_back", "2 rollback job(s) failed"),),
        rollout_state="rolled_back",
        reason="ring canary: 2 rollback job(s) failed",
    )


def test_partial_rollback_halts_when_other_rings_passed() -> None:
    rings = (
        _ring(1, _finished("succeeded", [1]), "passed", name="canary"),
        _ring(
            2,
            (_job(2, "succeeded", action="rollback", finished_at=NOW),),
            "rolling_back",
            name="wave",
        ),
    )
    step = advance(_rollout(*rings, state="rolling_back"), NOW)
    assert step == Step(
        rings=(RingChange(2, "rolled_back"),),
        rollout_state="halted",
        reason="rolled back ring(s) wave",
    )


def test_partial_rollback_with_failures() -> None:
    rings = (
        _ring(1, _finished("succeeded", [1]), "passed", name="canary"),
        _ring(2, (), "rolled_back", name="wave1"),
        _ring(
            3,
            (_job(3, "refused", action="rollback", finished_at=NOW),),
            "rolling_back",
            name="wave2",
        ),
    )
    step = advance(_rollout(*rings, state="rolling_back"), NOW)
    assert step == Step(
        rings=(RingChange(3, "rolled_back", "1 rollback job(s) failed"),),
        rollout_state="halted",
        reason="rolled back ring(s) wave1, wave2; ring wave2: 1 rollback job(s) failed",
    )


def test_rollback_ring_finished_while_another_still_works() -> None:
    rings = (
        _ring(1, (_job(1, "succeeded", action="rollback", finished_at=NOW),), "rolling_back"),
        _ring(2, _jobs([2], "running", action="rollback"), "rolling_back"),
    )
    step = advance(_rollout(*rings, state="rolling_back"), NOW)
    assert step == Step(rings=(RingChange(1, "rolled_back"),))


def test_rollback_timeout_counts_as_failure_in_the_same_step() -> None:
    job = _job(1, "running", action="rollback", dispatched_at=NOW - 2 * HOUR)
    ring = _ring(1, (job,), "rolling_back", name="canary")
    step = advance(_rollout(ring, state="rolling_back"), NOW)
    assert step == Step(
        time_out=(1,),
        rings=(RingChange(1, "rolled_back", "1 rollback job(s) failed"),),
        rollout_state="rolled_back",
        reason="ring canary: 1 rollback job(s) failed",
    )


def test_rollback_ring_without_rollback_jobs_is_rolled_back_at_once() -> None:
    ring = _ring(1, _finished("succeeded", [1]), "rolling_back")
    step = advance(_rollout(ring, state="rolling_back"), NOW)
    assert step == Step(rings=(RingChange(1, "rolled_back"),), rollout_state="rolled_back")


# -- determinism ---------------------------------------------------------------------

SCENARIOS: list[tuple[RolloutView, datetime]] = [
    (_rollout(_ring(1, _jobs(range(1, 16)), "pending", _policy("10%"))), NOW),
    (
        _rollout(
            _ring(1, _finished("succeeded", [1]), "soaking", _policy(soak=HOUR), completed_at=NOW),
            _ring(2, _jobs([2, 3], site="a"), "pending", _policy(site_limit=1)),
        ),
        NOW + HOUR,
    ),
    (
        _rollout(
            _ring(
                1,
                [_job(1, "running", dispatched_at=NOW - 2 * HOUR), _job(2, order_key=1)],
                "running",
                _policy(errors="1"),
            )
        ),
        NOW,
    ),
    (
        _rollout(
            _ring(1, _jobs([1, 2, 3], action="rollback"), "rolling_back", _policy("2")),
            state="rolling_back",
        ),
        CLOSED,
    ),
    (_rollout(_ring(1, _finished("failed", [1]), "running", name="c")), NOW),
]


@pytest.mark.parametrize(("rollout", "now"), SCENARIOS)
def test_advance_is_deterministic(rollout: RolloutView, now: datetime) -> None:
    first = advance(rollout, now)
    second = advance(rollout, now)
    assert first == second
    assert first.changes_anything


# -- properties ----------------------------------------------------------------------

JOB_STATES = ("pending", "pending", "dispatched", "running", *sorted(FINISHED_JOB_STATES))
RING_STATES_ON_THE_WAY = ("pending", "running", "soaking", "awaiting_signoff", "passed")


@st.composite
def _rollouts(draw: st.DrawFn) -> RolloutView:
    ring_count = draw(st.integers(1, 4))
    job_id = 0
    rings: list[RingView] = []
    positions = draw(st.permutations(list(range(ring_count))))
    for ring_id in range(1, ring_count + 1):
        jobs: list[JobView] = []
        for _ in range(draw(st.integers(0, 8))):
            job_id += 1
            state = draw(st.sampled_from(JOB_STATES))
            active = state in ACTIVE_JOB_STATES
            jobs.append(
                JobView(
                    id=job_id,
                    action=draw(st.sampled_from(["install", "install", "install", "rollback"])),
                    state=state,
                    order_key=draw(st.integers(0, 2)),
                    site=draw(st.sampled_from([None, "a", "b"])),
                    dispatched_at=(
                        NOW - timedelta(minutes=draw(st.integers(0, 120))) if active else None
                    ),
                    finished_at=(
                        NOW - timedelta(minutes=draw(st.integers(0, 120)))
                        if state in FINISHED_JOB_STATES
                        else None
                    ),
                    smoke_failed=draw(st.booleans()) and state == "succeeded",
                    schedule=draw(st.sampled_from([None, None, Schedule(), ALWAYS_CLOSED])),
                )
            )
        percent = draw(st.booleans())
        policy = RingPolicy(
            max_concurrency=Limit(draw(st.integers(0, 100 if percent else 6)), percent),
            max_errors=Limit(draw(st.integers(0, 3))),
            soak=timedelta(minutes=draw(st.sampled_from([0, 0, 30, 600]))),
            min_success_percent=draw(st.sampled_from([0.0, 50.0, 100.0])),
            require_signoff=draw(st.booleans()),
            schedule=draw(st.sampled_from([Schedule(), Schedule(), SATURDAY_WINDOW])),
            site_limit=draw(st.sampled_from([None, 1, 2])),
        )
        state = draw(st.sampled_from(RING_STATES_ON_THE_WAY))
        rings.append(
            RingView(
                id=ring_id,
                position=positions[ring_id - 1],
                name=f"ring{ring_id}",
                state=state,
                policy=policy,
                jobs=tuple(jobs),
                completed_at=(
                    NOW - timedelta(minutes=draw(st.integers(0, 120)))
                    if state in ("soaking", "awaiting_signoff", "passed")
                    else None
                ),
                signed_off=draw(st.booleans()),
            )
        )
    return RolloutView(
        id=1,
        state="running",
        rings=tuple(rings),
        job_timeout=HOUR,
        emergency=draw(st.booleans()),
    )


def _state_after(step: Step, ring: RingView) -> str:
    changes = {change.ring_id: change.state for change in step.rings}
    return changes.get(ring.id, ring.state)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rollout=_rollouts(), now=st.sampled_from([OPEN, CLOSED]))
def test_dispatch_stays_within_first_unfinished_ring_and_capacity(
    rollout: RolloutView, now: datetime
) -> None:
    step = advance(rollout, now)
    assert step == advance(rollout, now)

    assert len(set(step.dispatch)) == len(step.dispatch)
    assert len(set(step.time_out)) == len(step.time_out)
    ordered = sorted(rollout.rings, key=lambda ring: ring.position)
    unfinished = [ring for ring in ordered if _state_after(step, ring) != "passed"]
    if not unfinished:
        assert step.dispatch == ()
        assert step.rollout_state == "completed"
        return
    first = unfinished[0]
    installs = [job for job in first.jobs if job.action == "install"]
    pending = {job.id for job in installs if job.state == "pending"}
    assert set(step.dispatch) <= pending
    if step.dispatch:
        assert _state_after(step, first) == "running"
        assert step.rollout_state is None
    active = [
        job for job in installs if job.state in ACTIVE_JOB_STATES and job.id not in step.time_out
    ]
    capacity = first.policy.max_concurrency.concurrency(len(installs)) - len(active)
    assert len(step.dispatch) <= max(0, capacity)

    dispatched = [job for job in installs if job.id in step.dispatch]
    unfinished_keys = [
        job.order_key
        for job in installs
        if job.state not in FINISHED_JOB_STATES and job.id not in step.time_out
    ]
    assert all(job.order_key == min(unfinished_keys) for job in dispatched)
    if first.policy.site_limit is not None:
        running_at = Counter(job.site for job in active if job.site)
        added = Counter(job.site for job in dispatched if job.site)
        for site, count in added.items():
            assert running_at[site] + count <= first.policy.site_limit
    if not rollout.emergency:
        for job in dispatched:
            assert job.schedule is not ALWAYS_CLOSED
        if step.dispatch and first.policy.schedule == SATURDAY_WINDOW:
            assert now == OPEN
    # Timeouts are exactly the active jobs past the job timeout.
    expected_timeouts = {
        job.id
        for ring in rollout.rings
        for job in ring.jobs
        if job.state in ACTIVE_JOB_STATES
        and job.dispatched_at is not None
        and now >= job.dispatched_at + rollout.job_timeout
    }
    assert set(step.time_out) == expected_timeouts


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rollout=_rollouts(), now=st.sampled_from([OPEN, CLOSED]))
def test_rollback_dispatch_stays_within_capacity(rollout: RolloutView, now: datetime) -> None:
    rings = tuple(
        RingView(r.id, r.position, r.name, "rolling_back", r.policy, r.jobs) if r.id % 2 else r
        for r in rollout.rings
    )
    rolling = RolloutView(rollout.id, "rolling_back", rings, rollout.job_timeout)
    step = advance(rolling, now)
    assert step == advance(rolling, now)
    for ring in rings:
        dispatched = [job for job in ring.jobs if job.id in step.dispatch]
        if ring.state != "rolling_back":
            assert dispatched == []
            continue
        jobs = [job for job in ring.jobs if job.action == "rollback"]
        assert all(job.action == "rollback" and job.state == "pending" for job in dispatched)
        active = [j for j in jobs if j.state in ACTIVE_JOB_STATES and j.id not in step.time_out]
        capacity = ring.policy.max_concurrency.concurrency(len(jobs)) - len(active)
        assert len(dispatched) <= max(0, capacity)
    if step.rollout_state is not None:
        assert step.rollout_state in ("rolled_back", "halted")
        assert step.dispatch == ()


def test_jobs_next_in_line_are_named_soon() -> None:
    """Beyond capacity, the next jobs of the current order key (at most
    NEXT_IN_LINE) are named so their agents poll sooner; none while a window
    is closed, none of a later order key."""
    jobs = [*_jobs(range(1, 200)), *_jobs([500], order_key=1)]
    step = advance(_rollout(_ring(1, jobs, "running", _policy("10"))), NOW)
    assert step.dispatch == tuple(range(1, 11))
    assert step.soon == tuple(range(11, 11 + NEXT_IN_LINE))
    closed = _ring(1, jobs, "running", _policy("10", schedule=ALWAYS_CLOSED))
    assert advance(_rollout(closed), NOW).soon == ()
    later = [*_finished("succeeded", [1]), *_jobs([2]), *_jobs([3, 4], order_key=1)]
    assert advance(_rollout(_ring(1, later, "running", _policy("1"))), NOW).soon == ()
    paused = _rollout(_ring(1, jobs, "running", _policy("10")), state="paused")
    assert advance(paused, NOW).soon == ()
