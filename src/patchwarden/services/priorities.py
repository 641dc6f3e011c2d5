"""Stored prioritisation settings: risk weights and SLA policies (default and
per group). The scoring itself is pure (patchwarden.prioritize)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from patchwarden.prioritize.risk import (
    DEFAULT_WEIGHTS,
    RiskInputs,
    RiskScore,
    RiskWeights,
    risk_score,
)
from patchwarden.prioritize.sla import DEFAULT_SLA_POLICY, SlaDue, SlaPolicy, due_date
from patchwarden.services import audit, groups
from patchwarden.storage.tables import PolicySetting, utcnow

RISK_WEIGHTS_KEY = "risk_weights"
DEFAULT_SLA_KEY = "sla_policy:default"
GROUP_SLA_PREFIX = "sla_policy:group:"


def _get(session: Session, key: str) -> dict[str, Any] | None:
    row = session.get(PolicySetting, key)
    return None if row is None else row.value


def _put(session: Session, actor: str, key: str, value: dict[str, Any] | None) -> None:
    row = session.get(PolicySetting, key)
    before = None if row is None else row.value
    if value is None:
        if row is not None:
            session.delete(row)
    elif row is None:
        session.add(PolicySetting(key=key, value=value, updated_by=actor, updated_at=utcnow()))
    else:
        row.value, row.updated_by, row.updated_at = value, actor, utcnow()
    audit.record(
        session, actor, "policy.update", "policy_setting", key, {"from": before, "to": value}
    )


def risk_weights(session: Session) -> RiskWeights:
    stored = _get(session, RISK_WEIGHTS_KEY)
    return DEFAULT_WEIGHTS if stored is None else RiskWeights.from_mapping(stored)


def set_risk_weights(session: Session, actor: str, values: dict[str, Any] | None) -> RiskWeights:
    """Validate and store weights (None restores the defaults)."""
    weights = DEFAULT_WEIGHTS if values is None else RiskWeights.from_mapping(values)
    _put(session, actor, RISK_WEIGHTS_KEY, None if values is None else weights.as_dict())
    return weights


def set_sla_policy(
    session: Session, actor: str, group: groups.GroupRef | None, values: dict[str, Any] | None
) -> SlaPolicy:
    """Store the default policy (group None) or a group's (None values: remove it)."""
    policy = DEFAULT_SLA_POLICY if values is None else SlaPolicy.from_mapping(values)
    key = DEFAULT_SLA_KEY if group is None else f"{GROUP_SLA_PREFIX}{groups.get(session, group).id}"
    _put(session, actor, key, None if values is None else policy.as_dict())
    return policy


def sla_policy(session: Session, group: groups.GroupRef | None = None) -> SlaPolicy:
    """The default policy, or the one set for a group (the default when it has none)."""
    default = _get(session, DEFAULT_SLA_KEY)
    fallback = DEFAULT_SLA_POLICY if default is None else SlaPolicy.from_mapping(default)
    if group is None:
        return fallback
    stored = _get(session, f"{GROUP_SLA_PREFIX}{groups.get(session, group).id}")
    return fallback if stored is None else SlaPolicy.from_mapping(stored)


@dataclass(frozen=True)
class AssetContext:
    """What of an asset enters its findings' scores."""

    asset_id: int
    criticality: int
    internet_facing: bool
    data_sensitivity: str


class ScoredVulnerability(Protocol):
    """The vulnerability facts scoring reads (findings.VulnerabilityInfo)."""

    @property
    def id(self) -> str: ...
    @property
    def cvss_score(self) -> float | None: ...
    @property
    def severity(self) -> str | None: ...
    @property
    def epss(self) -> float | None: ...
    @property
    def kev(self) -> bool: ...
    @property
    def kev_ransomware(self) -> bool: ...
    @property
    def kev_due_date(self) -> date | None: ...


@dataclass
class ScoringContext:
    """Everything scoring needs beyond the finding, loaded once per batch."""

    weights: RiskWeights
    default_sla: SlaPolicy
    # Group SLA policies by asset: the first group by name that has one wins.
    asset_sla: dict[int, SlaPolicy] = field(default_factory=dict)
    # Memos: vulnerability details, risk per (vulnerability, asset context), due
    # dates per (vulnerability, first seen, policy). Risk keys are ids and values,
    # not the dataclasses: hashing those costs more than scoring on a fleet with
    # millions of findings. Recomputation shares them across runs (IndexCache).
    vulnerabilities: dict[str, Any] = field(default_factory=dict)
    risks: dict[tuple[Any, ...], RiskScore] = field(default_factory=dict)
    dues: dict[tuple[Any, ...], SlaDue] = field(default_factory=dict)

    @classmethod
    def load(cls, session: Session) -> ScoringContext:
        stored_default = _get(session, DEFAULT_SLA_KEY)
        context = cls(
            weights=risk_weights(session),
            default_sla=(
                DEFAULT_SLA_POLICY
                if stored_default is None
                else SlaPolicy.from_mapping(stored_default)
            ),
        )
        rows = session.execute(
            select(PolicySetting).where(PolicySetting.key.startswith(GROUP_SLA_PREFIX))
        ).scalars()
        group_policies = {int(r.key.removeprefix(GROUP_SLA_PREFIX)): r.value for r in rows}
        for view in groups.list_groups(session):  # sorted by name
            if view.id in group_policies:
                policy = SlaPolicy.from_mapping(group_policies[view.id])
                for asset_id in groups.members(session, view):
                    context.asset_sla.setdefault(asset_id, policy)
        return context

    def sla_for(self, asset_id: int) -> SlaPolicy:
        return self.asset_sla.get(asset_id, self.default_sla)

    def risk(self, vuln: ScoredVulnerability, asset: AssetContext) -> RiskScore:
        key = (vuln.id, asset.criticality, asset.internet_facing, asset.data_sensitivity)
        score = self.risks.get(key)
        if score is None:
            score = risk_score(
                RiskInputs(
                    cvss_base=vuln.cvss_score,
                    severity=vuln.severity,
                    epss=vuln.epss,
                    kev=vuln.kev,
                    kev_ransomware=vuln.kev_ransomware,
                    criticality=asset.criticality,
                    internet_facing=asset.internet_facing,
                    data_sensitivity=asset.data_sensitivity,
                ),
                self.weights,
            )
            self.risks[key] = score
        return score

    def due(self, vuln: ScoredVulnerability, asset: AssetContext, first_seen: datetime) -> SlaDue:
        policy = self.sla_for(asset.asset_id)
        # The policy by value (it is frozen): the memo may outlive this context.
        key = (vuln.id, first_seen, policy)
        due = self.dues.get(key)
        if due is None:
            due = due_date(first_seen, vuln.severity, vuln.kev, vuln.kev_due_date, policy)
            self.dues[key] = due
        return due
