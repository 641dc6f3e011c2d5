"""Each asset's findings counted by status, and its open findings by due date.

Recomputation keeps the counts as it writes an asset's findings (it has every
row at hand), and exceptions recount the assets whose findings they change: the
fleet's compliance figures add up one row per asset instead of counting
millions of findings on every call. Overdue findings are counted from the due
dates of the assets whose earliest open due date has passed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patchwarden.storage.tables import Asset, Finding

CHUNK = 500
# Fixed width, so that keys sort as the instants they name.
_KEY_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


@lru_cache(maxsize=65_536)  # an asset's findings share a few due dates; each one formatted once
def due_key(due: datetime) -> str:
    return due.astimezone(UTC).strftime(_KEY_FORMAT)


def _instant(key: str) -> datetime:
    return datetime.strptime(key, _KEY_FORMAT).replace(tzinfo=UTC)


@dataclass
class Tally:
    """One asset's findings as counted: by status, and open ones by due date."""

    counts: Counter[str] = field(default_factory=Counter)
    open_due: Counter[str] = field(default_factory=Counter)

    def add(self, status: str, due: datetime | None, count: int = 1) -> None:
        self.counts[status] += count
        if status == "open" and due is not None:
            self.open_due[due_key(due)] += count

    def add_open(self, count: int, dues: Iterable[tuple[str, int]]) -> None:
        """`count` open findings whose due dates, keyed, are counted in `dues`."""
        self.counts["open"] += count
        for key, n in dues:
            self.open_due[key] += n

    @classmethod
    def of(cls, asset: Asset) -> Tally:
        """An asset's counts as stored."""
        counts = {"open": asset.open_findings, "excepted": asset.excepted_findings}
        counts["fixed"] = asset.fixed_findings
        return cls(Counter(counts), Counter(asset.open_due_counts))

    def replacing(self, before: Tally, after: Tally) -> Tally:
        """These counts with part of them, `before`, replaced by `after` (some of an
        asset's findings matched again)."""

        def combine(whole: Counter[str], old: Counter[str], new: Counter[str]) -> Counter[str]:
            keys = whole.keys() | old.keys() | new.keys()
            combined = Counter({k: whole[k] - old[k] + new[k] for k in keys})
            return Counter({k: n for k, n in combined.items() if n})

        return Tally(
            combine(self.counts, before.counts, after.counts),
            combine(self.open_due, before.open_due, after.open_due),
        )

    def store(self, asset: Asset) -> None:
        asset.open_findings = self.counts["open"]
        asset.excepted_findings = self.counts["excepted"]
        asset.fixed_findings = self.counts["fixed"]
        asset.open_due_counts = dict(sorted(self.open_due.items()))
        asset.earliest_open_due = _instant(min(self.open_due)) if self.open_due else None


def due_counts(dues: Sequence[datetime | None]) -> tuple[tuple[str, int], ...]:
    """Keyed due dates of open findings, counted (what `Tally.add_open` takes)."""
    return tuple(Counter(due_key(d) for d in dues if d is not None).items())


def recount(session: Session, asset_ids: Iterable[int]) -> None:
    """Count these assets' findings again from the findings table."""
    ids = sorted(set(asset_ids))
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        tallies = {asset_id: Tally() for asset_id in chunk}
        rows = session.execute(
            select(Finding.asset_id, Finding.status, Finding.due_at, func.count())
            .where(Finding.asset_id.in_(chunk))
            .group_by(Finding.asset_id, Finding.status, Finding.due_at)
        )
        for asset_id, status, due, count in rows:
            tallies[asset_id].add(status, due, count)
        for asset in session.execute(select(Asset).where(Asset.id.in_(chunk))).scalars():
            tallies[asset.id].store(asset)
    session.flush()


def lock_assets(session: Session, asset_ids: Iterable[int]) -> list[int]:
    """Lock these assets' rows, in id order, before their findings change outside
    recomputation (which holds the rows of the assets it works on): their counts
    are then recounted after every other writer is done with them."""
    ids = sorted(set(asset_ids))
    locked: list[int] = []
    for start in range(0, len(ids), CHUNK):
        locked += session.execute(
            select(Asset.id)
            .where(Asset.id.in_(ids[start : start + CHUNK]))
            .order_by(Asset.id)
            .with_for_update()
        ).scalars()
    return locked


@dataclass(frozen=True)
class FleetCounts:
    open: int
    excepted: int
    fixed: int
    overdue: int
    assets: int
    assets_with_open: int


def fleet_counts(session: Session, now: datetime) -> FleetCounts:
    open_, excepted, fixed, assets, with_open = session.execute(
        select(
            func.coalesce(func.sum(Asset.open_findings), 0),
            func.coalesce(func.sum(Asset.excepted_findings), 0),
            func.coalesce(func.sum(Asset.fixed_findings), 0),
            func.count(),
            func.count().filter(Asset.open_findings > 0),
        )
    ).one()
    cutoff = due_key(now)
    overdue = 0
    for (dues,) in session.execute(
        select(Asset.open_due_counts).where(Asset.earliest_open_due < now)
    ):
        overdue += sum(n for key, n in dues.items() if key < cutoff)
    return FleetCounts(int(open_), int(excepted), int(fixed), overdue, int(assets), int(with_open))
