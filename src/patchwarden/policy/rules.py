"""Auto-approval rules: which patches approve themselves, and from when.

A rule ("security, severity ≥ high, 7 days after release") is a conjunction
of criteria; a criterion the rule leaves unset is not checked. `evaluate`
checks every criterion the rule sets and says, in `reasons`, what it found
for each one ("classification security is in {security}", "cvss 6.9 < 7.0"),
so a decision can always be traced to its inputs. The outcome is

* "approve": every criterion holds now;
* "wait": every criterion but the release delay holds; `eligible_at` says when
  the patch approves itself (evaluate again then);
* "no_match": some criterion fails (listed in `unmet`), or the rule is disabled.

The release delay, precisely: with ``days_after_release = N`` a patch is
eligible from local midnight, in the rule's time zone, of the day that is N
calendar days after its local release date (the date of `released_at` in
that zone). Calendar days, not 24-hour periods, so a delay across a DST change
still ends at midnight. When that midnight does not exist (the zone skips it,
e.g. America/Santiago on its DST start, Pacific/Apia on 2011-12-30), the
first instant that exists after it counts; when it occurs twice, the first.
N = 0 means eligible immediately: no delay, and no release date needed. With
N > 0 and no release date the rule cannot be satisfied ("release date unknown").

Datetimes must be aware; naive ones are refused with InvalidPolicy.
`eligible_at` is returned in UTC; the reason text shows it in the rule's zone.

`evaluate_rules` runs an ordered list: the first rule that approves decides;
else the rule with the earliest "wait" (the first in order on a tie); else no
rule matches and the outcome lists, per rule, why not.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Final, Literal, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from patchwarden.policy.errors import InvalidPolicy
from patchwarden.policy.patterns import PackagePattern
from patchwarden.prioritize.severity import SEVERITY_LEVELS, SeverityLevel

Classification = Literal["security", "bugfix", "enhancement", "unclassified"]
RuleSeverity = Literal["low", "medium", "high", "critical"]
OutcomeKind = Literal["approve", "wait", "no_match"]

CLASSIFICATIONS: Final[tuple[Classification, ...]] = (
    "security",
    "bugfix",
    "enhancement",
    "unclassified",
)
# Least severe first; "none" is not a useful minimum (it would only demand that
# a severity is known), so rules cannot name it.
RULE_SEVERITIES: Final[tuple[RuleSeverity, ...]] = ("low", "medium", "high", "critical")
MAX_RULE_NAME: Final = 128
MAX_DAYS_AFTER_RELEASE: Final = 3650
# Zone names that exist in the tz database but do not name a place: "localtime"
# would make a rule mean different things on different servers.
_NOT_PLACES: Final = frozenset({"localtime", "posixrules", "Factory"})
# Rank of each level, higher is more severe ("none" lowest).
_RANK: Final[Mapping[str, int]] = {
    level: len(SEVERITY_LEVELS) - i for i, level in enumerate(SEVERITY_LEVELS)
}


# -- validation helpers ------------------------------------------------------------


def _aware(value: object, what: str) -> datetime:
    if not isinstance(value, datetime):
        raise InvalidPolicy(f"{what} must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidPolicy(
            f"{what} {value.isoformat()} has no time zone; pass an aware datetime "
            "(e.g. datetime.now(UTC))"
        )
    return value


def _score(value: object, what: str) -> float | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0.0 <= value <= 10.0
    ):
        raise InvalidPolicy(f"{what} must be a number from 0.0 to 10.0 or empty, not {value!r}")
    return float(value)


@cache
def _known_zones() -> frozenset[str]:
    # Scanning the tz database takes ~0.1 s: once per process is enough.
    return frozenset(available_timezones())


def validate_timezone(name: object) -> ZoneInfo:
    """The zone of an IANA name ("Europe/Berlin"); InvalidPolicy for anything else."""
    hint = "use an IANA time zone name such as 'Europe/Berlin', 'America/New_York' or 'UTC'"
    if not isinstance(name, str) or not name:
        raise InvalidPolicy(f"time zone must be a non-empty name, not {name!r}; {hint}")
    if name in _NOT_PLACES:
        raise InvalidPolicy(f"time zone {name!r} does not name a place; {hint}")
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidPolicy(f"unknown time zone {name!r}; {hint}") from exc
    if name != "UTC" and name not in _known_zones():
        raise InvalidPolicy(f"unknown time zone {name!r}; {hint}")
    return zone


def _patterns(value: object, what: str) -> tuple[PackagePattern, ...]:
    if isinstance(value, str | PackagePattern) or not isinstance(value, Iterable):
        raise InvalidPolicy(f"{what} must be a list of package patterns, not {value!r}")
    result: list[PackagePattern] = []
    for item in value:
        if isinstance(item, PackagePattern):
            pattern = item
        elif isinstance(item, str):
            pattern = PackagePattern.parse(item)
        else:
            raise InvalidPolicy(f"{what}: {item!r} is not a package pattern")
        if pattern not in result:
            result.append(pattern)
    return tuple(result)


def _classifications(value: object) -> frozenset[Classification]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise InvalidPolicy(f"classifications must be a set of names, not {value!r}")
    items = list(value)
    unknown = sorted(repr(item) for item in items if item not in CLASSIFICATIONS)
    if unknown:
        raise InvalidPolicy(
            f"unknown classification(s) {', '.join(unknown)}; valid: {', '.join(CLASSIFICATIONS)} "
            "(leave empty for any)"
        )
    return frozenset(cast(list[Classification], items))


def _number(value: float) -> str:
    """CVSS-style text: one decimal, more only when the value has more."""
    return f"{value:.1f}" if round(value, 1) == value else f"{value:g}"


def _days(n: int) -> str:
    return f"{n} day" if n == 1 else f"{n} days"


# -- values ------------------------------------------------------------------------


@dataclass(frozen=True)
class ApprovalRule:
    """One auto-approval rule. Unset criteria are not checked; a rule with none
    approves every patch. Validated on construction (InvalidPolicy):

    * name: 1-128 characters after trimming (stored trimmed), no control characters;
    * classifications: a subset of CLASSIFICATIONS (empty: any);
    * min_severity: "low" | "medium" | "high" | "critical" or None;
    * min_cvss: 0.0-10.0 or None (compared with the patch's highest CVSS score);
    * include / exclude: package patterns (text is parsed); empty include: every package;
    * days_after_release: whole days 0-3650 or None (see the module docstring);
    * timezone: an IANA name, the zone of the release delay's calendar days.
    """

    name: str
    classifications: frozenset[Classification] = frozenset()
    min_severity: RuleSeverity | None = None
    min_cvss: float | None = None
    kev_only: bool = False
    include: tuple[PackagePattern, ...] = ()
    exclude: tuple[PackagePattern, ...] = ()
    days_after_release: int | None = None
    timezone: str = "UTC"
    enabled: bool = True

    def __post_init__(self) -> None:
        name = self.name
        if not isinstance(name, str) or not name.strip():
            raise InvalidPolicy(f"a rule needs a name, not {name!r}")
        name = name.strip()
        if len(name) > MAX_RULE_NAME or any(not ch.isprintable() for ch in name):
            raise InvalidPolicy(
                f"rule name {name[:40]!r} must be at most {MAX_RULE_NAME} printable characters"
            )
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "classifications", _classifications(self.classifications))
        if self.min_severity is not None and self.min_severity not in RULE_SEVERITIES:
            raise InvalidPolicy(
                f"rule {name!r}: min_severity {self.min_severity!r} is not one of "
                f"{', '.join(RULE_SEVERITIES)} (or empty)"
            )
        object.__setattr__(self, "min_cvss", _score(self.min_cvss, f"rule {name!r}: min_cvss"))
        for flag in ("kev_only", "enabled"):
            if not isinstance(getattr(self, flag), bool):
                raise InvalidPolicy(f"rule {name!r}: {flag} must be true or false")
        object.__setattr__(self, "include", _patterns(self.include, f"rule {name!r}: include"))
        object.__setattr__(self, "exclude", _patterns(self.exclude, f"rule {name!r}: exclude"))
        days = self.days_after_release
        if days is not None and (
            isinstance(days, bool)
            or not isinstance(days, int)
            or not 0 <= days <= MAX_DAYS_AFTER_RELEASE
        ):
            raise InvalidPolicy(
                f"rule {name!r}: days_after_release must be a whole number of days from 0 to "
                f"{MAX_DAYS_AFTER_RELEASE} (or empty), not {days!r}"
            )
        validate_timezone(self.timezone)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @classmethod
    def from_mapping(cls, data: Mapping[str, object]) -> ApprovalRule:
        """A rule from configuration or an API body, e.g.
        ``{"name": "sec-high", "classifications": ["security"], "min_severity": "high",
        "days_after_release": 7, "timezone": "Europe/Berlin"}``.

        Keys left out keep their defaults; unknown keys are refused naming the valid ones.
        """
        if not isinstance(data, Mapping):
            raise InvalidPolicy(f"a rule must be a mapping, not {type(data).__name__}")
        names = [item.name for item in fields(cls)]
        unknown = sorted(str(key) for key in data if key not in names)
        if unknown:
            raise InvalidPolicy(
                f"unknown rule key(s) {', '.join(unknown)}; valid: {', '.join(names)}"
            )
        if "name" not in data:
            raise InvalidPolicy("a rule needs a name")
        return cls(**data)  # type: ignore[arg-type]  # every field is checked in __post_init__

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready dict that `from_mapping` reads back into an equal rule."""
        return {
            "name": self.name,
            "classifications": sorted(self.classifications),
            "min_severity": self.min_severity,
            "min_cvss": self.min_cvss,
            "kev_only": self.kev_only,
            "include": [p.text for p in self.include],
            "exclude": [p.text for p in self.exclude],
            "days_after_release": self.days_after_release,
            "timezone": self.timezone,
            "enabled": self.enabled,
        }


@dataclass(frozen=True)
class PatchFacts:
    """What a rule looks at in a patch. `severity` is one of the prioritisation
    levels (map feed wording with `patchwarden.prioritize.normalise_severity`
    first); `cvss` is the highest CVSS base score among the findings it closes;
    `kev` whether any of them is in CISA KEV; `released_at` when the fix was
    published (aware), None when unknown."""

    package: str
    classification: Classification
    severity: SeverityLevel | None = None
    cvss: float | None = None
    kev: bool = False
    released_at: datetime | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.package, str) or not self.package:
            raise InvalidPolicy(f"a patch needs a package name, not {self.package!r}")
        if self.classification not in CLASSIFICATIONS:
            raise InvalidPolicy(
                f"patch {self.package}: classification {self.classification!r} is not one of "
                f"{', '.join(CLASSIFICATIONS)}"
            )
        if self.severity is not None and self.severity not in SEVERITY_LEVELS:
            raise InvalidPolicy(
                f"patch {self.package}: severity {self.severity!r} is not one of "
                f"{', '.join(SEVERITY_LEVELS)}; map feed wording with normalise_severity"
            )
        object.__setattr__(self, "cvss", _score(self.cvss, f"patch {self.package}: cvss"))
        if not isinstance(self.kev, bool):
            raise InvalidPolicy(f"patch {self.package}: kev must be true or false")
        if self.released_at is not None:
            _aware(self.released_at, f"patch {self.package}: released_at")


@dataclass(frozen=True)
class RuleOutcome:
    """A decision and its explanation.

    `rule` names the rule that decided (None when no rule matched in
    `evaluate_rules`). `reasons` has one line per criterion checked, met or
    not; `unmet` repeats the ones that failed (for "wait": the release delay).
    `eligible_at` (UTC) is set for "wait", and for "approve" when a release
    delay applied; None otherwise.
    """

    kind: OutcomeKind
    rule: str | None
    reasons: tuple[str, ...]
    unmet: tuple[str, ...] = ()
    eligible_at: datetime | None = None

    @property
    def approved(self) -> bool:
        return self.kind == "approve"


# -- the release delay -------------------------------------------------------------


def _first_instant_of(day: date, zone: ZoneInfo) -> datetime:
    """The first instant (UTC) whose wall-clock time in ``zone`` is at or after 00:00 of ``day``."""
    wall = datetime.combine(day, time(0), tzinfo=zone)  # fold=0: the earlier of two midnights
    instant = wall.astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == wall.replace(tzinfo=None):
        return instant
    # Midnight falls in a gap. fold=1 reads it with the offset after the change,
    # which lands before the gap; fold=0 with the one before, at or after it.
    # Bisect (in whole seconds, as tz transitions are) for the gap's end.
    midnight = wall.replace(tzinfo=None)
    low = int(wall.replace(fold=1).astimezone(UTC).timestamp())  # wall time before midnight
    high = int(instant.timestamp())  # wall time at or after midnight
    while high - low > 1:
        middle = (low + high) // 2
        local = datetime.fromtimestamp(middle, UTC).astimezone(zone).replace(tzinfo=None)
        if local >= midnight:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def eligible_at(released_at: datetime, days_after_release: int, timezone: str) -> datetime:
    """When a patch released at `released_at` becomes eligible under a delay of
    `days_after_release` calendar days in `timezone` (UTC; see the module docstring).

    >>> eligible_at(datetime(2026, 11, 1, 9, 30, tzinfo=UTC), 3, "Europe/Berlin").isoformat()
    '2026-11-03T23:00:00+00:00'
    """
    if (
        isinstance(days_after_release, bool)
        or not isinstance(days_after_release, int)
        or not 0 <= days_after_release <= MAX_DAYS_AFTER_RELEASE
    ):
        raise InvalidPolicy(
            f"days_after_release must be a whole number of days from 0 to "
            f"{MAX_DAYS_AFTER_RELEASE}, not {days_after_release!r}"
        )
    zone = validate_timezone(timezone)
    released = _aware(released_at, "released_at").astimezone(zone)
    return _first_instant_of(released.date() + timedelta(days=days_after_release), zone)


# -- evaluation --------------------------------------------------------------------


def _release_check(
    days: int, rule: ApprovalRule, facts: PatchFacts, now: datetime
) -> tuple[bool, str, datetime | None]:
    """(met now, reason, eligible instant or None) of a release delay of `days`."""
    if days == 0:
        return True, "0 days after release: eligible immediately", None
    if facts.released_at is None:
        return False, f"release date unknown (the rule waits {_days(days)} after release)", None
    zone = rule.zone
    when = eligible_at(facts.released_at, days, rule.timezone)
    local = when.astimezone(zone)
    released_day = facts.released_at.astimezone(zone).date()
    text = (
        f"released {released_day.isoformat()} ({rule.timezone}); {_days(days)} after release "
        f"→ eligible {local:%Y-%m-%d %H:%M} {rule.timezone}"
    )
    if local.time() != time(0):
        text += " (midnight does not exist that day: first valid time)"
    if now < when:
        return False, f"{text}; not yet (now {now.astimezone(zone):%Y-%m-%d %H:%M:%S})", when
    return True, text, when


def evaluate(rule: ApprovalRule, facts: PatchFacts, now: datetime) -> RuleOutcome:
    """The decision of one rule for one patch at `now` (see the module docstring)."""
    _aware(now, "now")
    if not rule.enabled:
        text = f"rule {rule.name!r} is disabled"
        return RuleOutcome("no_match", rule.name, (text,), (text,))
    checks: list[tuple[bool, str]] = []
    package = facts.package
    if rule.include:
        hit = next((p for p in rule.include if p.matches(package)), None)
        if hit is not None:
            checks.append((True, f"package {package} matches include pattern {hit.text!r}"))
        else:
            listed = ", ".join(repr(p.text) for p in rule.include)
            checks.append((False, f"package {package} matches no include pattern ({listed})"))
    if rule.exclude:
        hit = next((p for p in rule.exclude if p.matches(package)), None)
        if hit is not None:
            checks.append((False, f"package {package} matches exclude pattern {hit.text!r}"))
        else:
            listed = ", ".join(repr(p.text) for p in rule.exclude)
            checks.append((True, f"package {package} matches no exclude pattern ({listed})"))
    if rule.classifications:
        wanted = "{" + ", ".join(sorted(rule.classifications)) + "}"
        if facts.classification in rule.classifications:
            checks.append((True, f"classification {facts.classification} is in {wanted}"))
        else:
            checks.append((False, f"classification {facts.classification} is not in {wanted}"))
    if rule.min_severity is not None:
        if facts.severity is None:
            checks.append((False, f"severity unknown (rule needs ≥ {rule.min_severity})"))
        elif _RANK[facts.severity] >= _RANK[rule.min_severity]:
            checks.append((True, f"severity {facts.severity} ≥ {rule.min_severity}"))
        else:
            checks.append((False, f"severity {facts.severity} < {rule.min_severity}"))
    if rule.min_cvss is not None:
        needed = _number(rule.min_cvss)
        if facts.cvss is None:
            checks.append((False, f"cvss unknown (rule needs ≥ {needed})"))
        elif facts.cvss >= rule.min_cvss:
            checks.append((True, f"cvss {_number(facts.cvss)} ≥ {needed}"))
        else:
            checks.append((False, f"cvss {_number(facts.cvss)} < {needed}"))
    if rule.kev_only:
        if facts.kev:
            checks.append((True, "listed in CISA KEV"))
        else:
            checks.append((False, "not listed in CISA KEV (rule approves KEV-listed patches only)"))
    reasons = [text for _, text in checks]
    unmet = [text for ok, text in checks if not ok]
    when: datetime | None = None
    waiting = False  # only the release delay is unmet, and it ends at `when`
    if rule.days_after_release is not None:
        met, text, when = _release_check(rule.days_after_release, rule, facts, now)
        reasons.append(text)
        if not met:
            waiting = not unmet and when is not None
            unmet.append(text)
    if not reasons:
        reasons.append("the rule sets no criteria: every patch matches")
    if waiting:
        return RuleOutcome("wait", rule.name, tuple(reasons), tuple(unmet), when)
    if unmet:
        return RuleOutcome("no_match", rule.name, tuple(reasons), tuple(unmet))
    return RuleOutcome("approve", rule.name, tuple(reasons), (), when)


def evaluate_rules(rules: Sequence[ApprovalRule], facts: PatchFacts, now: datetime) -> RuleOutcome:
    """The decision of an ordered rule list: the first rule that approves, else
    the earliest "wait", else "no_match" (rule None) with one reason per rule
    saying why it did not match. Rule names must be unique (InvalidPolicy)."""
    seen: set[str] = set()
    for rule in rules:
        if rule.name in seen:
            raise InvalidPolicy(f"two rules are named {rule.name!r}; rule names must be unique")
        seen.add(rule.name)
    _aware(now, "now")
    outcomes = [evaluate(rule, facts, now) for rule in rules]
    for outcome in outcomes:
        if outcome.kind == "approve":
            return outcome
    waits = [o for o in outcomes if o.kind == "wait" and o.eligible_at is not None]
    if waits:
        # min() keeps the first of equal instants: rule order breaks ties.
        return min(waits, key=lambda o: cast(datetime, o.eligible_at))
    if not outcomes:
        reasons: tuple[str, ...] = ("no auto-approval rules",)
    else:
        reasons = tuple(f"rule {o.rule!r}: {'; '.join(o.unmet)}" for o in outcomes)
    return RuleOutcome("no_match", None, reasons, reasons)
