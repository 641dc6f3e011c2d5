"""Approvals: manual decisions on patches (request, approve, decline, lift,
revoke) and the groups' auto-approval rules with their recorded decisions.

The state machine and the rule semantics are pure (patchwarden.policy); this
module stores them, audits every change, and answers "may this patch go to
this group?" for rollouts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patchwarden.errors import Conflict, InvalidInput, NotFound
from patchwarden.policy import approvals as machine
from patchwarden.policy.errors import InvalidPolicy
from patchwarden.policy.rules import ApprovalRule, PatchFacts, RuleOutcome, evaluate_rules
from patchwarden.prioritize.severity import SEVERITY_LEVELS, normalise_severity
from patchwarden.services import audit, groups
from patchwarden.services.findings import vulnerability_info
from patchwarden.services.patches import get_patch, patch_summary
from patchwarden.storage.tables import (
    Approval,
    ApprovalRuleRow,
    AssetPatch,
    Patch,
    PolicySetting,
    Rollout,
    RolloutJob,
    RolloutRing,
    RuleDecision,
    utcnow,
)

FOUR_EYES_KEY = "approvals"
# Rule names are stored in columns of 100 characters (approval_rules, rule_decisions).
MAX_STORED_RULE_NAME = 100


@dataclass(frozen=True)
class Actor:
    """Who acts: the audit name ("user:alice", "cli:root") and whether their role approves."""

    name: str
    can_approve: bool


def four_eyes(session: Session) -> bool:
    """On by default: a requester never approves their own request."""
    row = session.get(PolicySetting, FOUR_EYES_KEY)
    return True if row is None else bool(row.value.get("four_eyes", True))


def set_four_eyes(session: Session, actor: str, enabled: bool) -> None:
    row = session.get(PolicySetting, FOUR_EYES_KEY)
    if row is None:
        session.add(
            PolicySetting(key=FOUR_EYES_KEY, value={"four_eyes": enabled}, updated_by=actor)
        )
    else:
        row.value, row.updated_by, row.updated_at = {"four_eyes": enabled}, actor, utcnow()
    audit.record(
        session, actor, "policy.update", "policy_setting", FOUR_EYES_KEY, {"four_eyes": enabled}
    )


# --- manual decisions -------------------------------------------------------------------


def act(
    session: Session, actor: Actor, patch_id: int, action: str, comment: str | None = None
) -> dict[str, Any]:
    """Apply one action of the approval state machine to a patch."""
    patch = get_patch(session, patch_id)
    row = _approval(session, patch.id)
    current = None if row is None else row.state
    requester = None if row is None else row.requested_by
    # The pure machine compares ids: the actor is 1, the requester 1 when it is the
    # same person and 2 otherwise.
    new_state = machine.transition(
        current,  # type: ignore[arg-type]
        action,  # type: ignore[arg-type]
        1,
        None if requester is None else (1 if requester == actor.name else 2),
        actor.can_approve,
        four_eyes(session),
        comment,
    )
    now = utcnow()
    if row is None:
        row = Approval(patch_id=patch.id, state=new_state)
        session.add(row)
    row.state = new_state
    if new_state == "pending":
        row.requested_by, row.requested_at = actor.name, now
        row.decided_by, row.decided_at = None, None
    else:
        row.decided_by, row.decided_at = actor.name, now
    row.comment = (comment or "").strip()
    session.flush()
    audit.record(
        session,
        actor.name,
        f"approval.{action}",
        "patch",
        str(patch.id),
        {
            "from": current,
            "to": new_state,
            "comment": row.comment,
            "package": patch.package_name,
            "target_version": patch.target_version,
        },
    )
    return approval_view(session, patch)


def _approval(session: Session, patch_id: int) -> Approval | None:
    return session.execute(
        select(Approval).where(Approval.patch_id == patch_id)
    ).scalar_one_or_none()


def approval_view(session: Session, patch: Patch) -> dict[str, Any]:
    row = _approval(session, patch.id)
    decisions = session.execute(
        select(RuleDecision)
        .where(RuleDecision.patch_id == patch.id)
        .order_by(RuleDecision.group_id)
    ).scalars()
    return {
        "patch_id": patch.id,
        "package": patch.package_name,
        "target_version": patch.target_version,
        "state": None if row is None else row.state,
        "requested_by": None if row is None else row.requested_by,
        "requested_at": _iso(None if row is None else row.requested_at),
        "decided_by": None if row is None else row.decided_by,
        "decided_at": _iso(None if row is None else row.decided_at),
        "comment": "" if row is None else row.comment,
        "rule_decisions": [_decision_view(session, d) for d in decisions],
    }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _decision_view(session: Session, d: RuleDecision) -> dict[str, Any]:
    return {
        "group": groups.get(session, d.group_id).name,
        "rule": d.rule_name,
        "outcome": d.outcome,
        "eligible_at": _iso(d.eligible_at),
        "reasons": list(d.reasons),
        "decided_at": _iso(d.decided_at),
    }


def list_approvals(session: Session, state: str | None = None) -> list[dict[str, Any]]:
    if state is not None and state not in machine.APPROVAL_STATES:
        raise InvalidInput(
            f"unknown approval state {state!r}: expected one of "
            + ", ".join(machine.APPROVAL_STATES)
        )
    query = select(Approval, Patch).join(Patch, Patch.id == Approval.patch_id)
    if state is not None:
        query = query.where(Approval.state == state)
    rows = session.execute(query.order_by(Approval.id)).all()
    return [approval_view(session, patch) for _, patch in rows]


def deployable_state(session: Session, patch_id: int, group_id: int | None) -> str | None:
    """The state that counts for deploying a patch to a group (see
    policy.approvals.effective_state): a manual decline wins over every rule."""
    row = _approval(session, patch_id)
    automatic = None
    if group_id is not None:
        decision = session.execute(
            select(RuleDecision).where(
                RuleDecision.patch_id == patch_id, RuleDecision.group_id == group_id
            )
        ).scalar_one_or_none()
        if decision is not None and decision.outcome == "approve":
            automatic = RuleOutcome("approve", decision.rule_name, tuple(decision.reasons))
    return machine.effective_state(None if row is None else row.state, automatic)  # type: ignore[arg-type]


def ensure_deployable(session: Session, patch_id: int, group_id: int | None) -> None:
    """Raise a clear error unless the patch may go to the group (rollouts call this)."""
    patch = get_patch(session, patch_id)
    row = _approval(session, patch_id)
    machine.ensure_deployable(
        deployable_state(session, patch_id, group_id),  # type: ignore[arg-type]
        f"{patch.id} ({patch.package_name} {patch.target_version})",
        None if row is None else row.comment,
    )


def dossier(session: Session, patch_id: int) -> dict[str, Any]:
    """What an approver reads: what the patch fixes, its risk, where it goes, the
    decisions so far, and how it did in the rings of rollouts that carried it."""
    patch = get_patch(session, patch_id)
    summary = patch_summary(session, patch)
    info = vulnerability_info(session, summary["closes"])
    summary["vulnerabilities"] = [
        {
            "id": v.id,
            "severity": v.severity,
            "cvss": v.cvss_score,
            "epss": v.epss,
            "kev": v.kev,
            "description": (v.description or "")[:300],
        }
        for v in sorted(info.values(), key=lambda v: -(v.cvss_score or 0.0))
    ]
    summary["approval"] = approval_view(session, patch)
    summary["test_results"] = ring_results(session, patch.id)
    return summary


def ring_results(session: Session, patch_id: int) -> list[dict[str, Any]]:
    """Per rollout that carried the patch and per ring it reached: the ring's
    state and its install jobs' outcomes, newest rollout first."""
    carrying = [
        rollout
        for rollout in session.execute(select(Rollout).order_by(Rollout.id.desc())).scalars()
        if patch_id in rollout.patch_ids
    ]
    results = []
    for rollout in carrying:
        rows = session.execute(
            select(RolloutRing.name, RolloutRing.state, RolloutJob.state, RolloutJob.smoke_failed)
            .join(RolloutJob, RolloutJob.ring_id == RolloutRing.id)
            .where(RolloutRing.rollout_id == rollout.id, RolloutJob.action == "install")
            .order_by(RolloutRing.position)
        ).all()
        rings: dict[str, dict[str, Any]] = {}
        for ring, ring_state, job_state, smoke_failed in rows:
            entry = rings.setdefault(
                ring, {"ring": ring, "state": ring_state, "jobs": {}, "smoke_failures": 0}
            )
            entry["jobs"][job_state] = entry["jobs"].get(job_state, 0) + 1
            entry["smoke_failures"] += int(smoke_failed)
        results.append(
            {
                "rollout_id": rollout.id,
                "rollout": rollout.name,
                "state": rollout.state,
                "rings": [r for r in rings.values() if r["state"] != "pending"],
            }
        )
    return results


# --- auto-approval rules ----------------------------------------------------------------


def add_rule(
    session: Session, actor: str, group: groups.GroupRef, definition: dict[str, Any]
) -> dict[str, Any]:
    view = groups.get(session, group)
    rule = ApprovalRule.from_mapping(definition)
    if len(rule.name) > MAX_STORED_RULE_NAME:
        raise InvalidPolicy(
            f"rule name {rule.name[:40]!r}… is {len(rule.name)} characters long; "
            f"at most {MAX_STORED_RULE_NAME} are allowed"
        )
    if session.execute(
        select(ApprovalRuleRow.id).where(
            ApprovalRuleRow.group_id == view.id, ApprovalRuleRow.name == rule.name
        )
    ).first():
        raise Conflict(f"group {view.name} already has a rule named {rule.name!r}")
    position = session.execute(
        select(func.coalesce(func.max(ApprovalRuleRow.position), 0)).where(
            ApprovalRuleRow.group_id == view.id
        )
    ).scalar_one()
    row = ApprovalRuleRow(
        group_id=view.id,
        name=rule.name,
        position=position + 1,
        definition=dict(rule.as_dict()),
        created_by=actor,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor,
        "rule.add",
        "approval_rule",
        str(row.id),
        {"group": view.name, **row.definition},
    )
    evaluate_group(session, view.id)
    return _rule_view(session, row)


def remove_rule(session: Session, actor: str, rule_id: int) -> None:
    row = session.get(ApprovalRuleRow, rule_id)
    if row is None:
        raise NotFound(f"rule {rule_id} not found")
    group_id = row.group_id
    session.delete(row)
    session.flush()
    audit.record(session, actor, "rule.remove", "approval_rule", str(rule_id), {"name": row.name})
    evaluate_group(session, group_id)


def list_rules(session: Session, group: groups.GroupRef | None = None) -> list[dict[str, Any]]:
    query = select(ApprovalRuleRow).order_by(ApprovalRuleRow.group_id, ApprovalRuleRow.position)
    if group is not None:
        query = query.where(ApprovalRuleRow.group_id == groups.get(session, group).id)
    return [_rule_view(session, r) for r in session.execute(query).scalars()]


def _rule_view(session: Session, row: ApprovalRuleRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "group": groups.get(session, row.group_id).name,
        "position": row.position,
        **row.definition,
        "created_by": row.created_by,
    }


def patch_facts(session: Session, patch: Patch, closes: Iterable[str]) -> PatchFacts:
    """A patch as rules see it: the worst of the findings it closes (or its notices)."""
    info = vulnerability_info(session, closes)
    # Feed and updateinfo wording ("Important", "moderate") both map through the aliases.
    levels = [
        normalise_severity(text) for text in [patch.severity, *(v.severity for v in info.values())]
    ]
    known = [level for level in levels if level is not None]
    scores = [v.cvss_score for v in info.values() if v.cvss_score is not None]
    return PatchFacts(
        package=patch.package_name,
        classification=patch.classification,  # type: ignore[arg-type]
        severity=min(known, key=SEVERITY_LEVELS.index) if known else None,  # most severe first
        cvss=max(scores) if scores else None,
        kev=any(v.kev for v in info.values()),
        released_at=patch.released_at,
    )


def evaluate_group(session: Session, group_id: int, now: datetime | None = None) -> int:
    """Re-decide every available patch of the group's members under its rules.
    Returns how many decisions approve."""
    now = now or utcnow()
    rows = (
        session.execute(
            select(ApprovalRuleRow)
            .where(ApprovalRuleRow.group_id == group_id)
            .order_by(ApprovalRuleRow.position)
        )
        .scalars()
        .all()
    )
    rules = [ApprovalRule.from_mapping(r.definition) for r in rows]
    rule_ids = {r.name: r.id for r in rows}
    existing = {
        d.patch_id: d
        for d in session.execute(
            select(RuleDecision).where(RuleDecision.group_id == group_id)
        ).scalars()
    }
    members = groups.members(session, group_id)
    closes: dict[int, set[str]] = {}
    for start in range(0, len(members), 500):
        for patch_id, vulns in session.execute(
            select(AssetPatch.patch_id, AssetPatch.closes).where(
                AssetPatch.asset_id.in_(members[start : start + 500]),
                AssetPatch.status == "available",
            )
        ):
            closes.setdefault(patch_id, set()).update(vulns)
    approved = 0
    seen: set[int] = set()
    for patch_id, vulns in closes.items():
        patch = session.get(Patch, patch_id)
        assert patch is not None
        outcome = evaluate_rules(rules, patch_facts(session, patch, vulns), now) if rules else None
        if outcome is None or outcome.kind == "no_match":
            continue
        seen.add(patch_id)
        approved += outcome.approved
        row = existing.get(patch_id)
        if row is None:
            row = RuleDecision(patch_id=patch_id, group_id=group_id)
            session.add(row)
        elif row.outcome == outcome.kind and row.rule_name == outcome.rule:
            continue  # unchanged: keep the time it was first decided
        row.rule_id = rule_ids.get(outcome.rule or "")
        row.rule_name = outcome.rule or ""
        row.outcome = outcome.kind
        row.eligible_at = outcome.eligible_at
        row.reasons = list(outcome.reasons)
        row.decided_at = now
        audit.record(
            session,
            "system:rules",
            f"rule_decision.{outcome.kind}",
            "patch",
            str(patch_id),
            {"group_id": group_id, "rule": outcome.rule, "reasons": list(outcome.reasons)},
        )
    for patch_id, row in existing.items():
        if patch_id not in seen:
            session.delete(row)
    session.flush()
    return approved


def evaluate_all(session: Session, now: datetime | None = None) -> int:
    """Every group with rules (the upkeep loop: patches changed, or a release delay ended)."""
    group_ids = session.execute(select(ApprovalRuleRow.group_id).distinct()).scalars().all()
    decided = session.execute(select(RuleDecision.group_id).distinct()).scalars().all()
    return sum(evaluate_group(session, g, now) for g in sorted(set(group_ids) | set(decided)))
