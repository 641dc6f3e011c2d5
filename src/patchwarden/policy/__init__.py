"""Policy (pure): approval rules, the approval state machine, risk acceptances,
baselines and reboot needs.

Nothing here touches the database, the network or the clock; callers pass
every value in, including "now".

>>> from datetime import UTC, datetime
>>> rule = ApprovalRule("security-high", frozenset({"security"}), min_severity="high")
>>> now = datetime(2026, 1, 5, tzinfo=UTC)
>>> evaluate(rule, PatchFacts("openssl", "security", "critical"), now).kind
'approve'
"""

from patchwarden.policy.approvals import (
    APPROVAL_ACTIONS,
    APPROVAL_STATES,
    TRANSITIONS,
    ApprovalAction,
    ApprovalState,
    effective_state,
    ensure_deployable,
    transition,
)
from patchwarden.policy.baselines import (
    AssetPackages,
    BaselineEntry,
    BaselineMode,
    DriftRow,
    DriftStatus,
    PackageSprawl,
    VersionAssets,
    drift,
    version_sprawl,
)
from patchwarden.policy.errors import (
    ApproverRequired,
    CommentRequired,
    FourEyesViolation,
    InvalidPattern,
    InvalidPolicy,
    NotDeployable,
    TransitionNotAllowed,
)
from patchwarden.policy.exceptions import (
    SCOPE_KINDS,
    ExpirySplit,
    RiskAcceptance,
    ScopeKind,
    expired,
    is_active,
    split_by_expiry,
)
from patchwarden.policy.patterns import PackagePattern
from patchwarden.policy.reboot import needs_reboot
from patchwarden.policy.rules import (
    CLASSIFICATIONS,
    RULE_SEVERITIES,
    ApprovalRule,
    Classification,
    OutcomeKind,
    PatchFacts,
    RuleOutcome,
    RuleSeverity,
    eligible_at,
    evaluate,
    evaluate_rules,
)

__all__ = [
    "APPROVAL_ACTIONS",
    "APPROVAL_STATES",
    "CLASSIFICATIONS",
    "RULE_SEVERITIES",
    "SCOPE_KINDS",
    "TRANSITIONS",
    "ApprovalAction",
    "ApprovalRule",
    "ApprovalState",
    "ApproverRequired",
    "AssetPackages",
    "BaselineEntry",
    "BaselineMode",
    "Classification",
    "CommentRequired",
    "DriftRow",
    "DriftStatus",
    "ExpirySplit",
    "FourEyesViolation",
    "InvalidPattern",
    "InvalidPolicy",
    "NotDeployable",
    "OutcomeKind",
    "PackagePattern",
    "PackageSprawl",
    "PatchFacts",
    "RiskAcceptance",
    "RuleOutcome",
    "RuleSeverity",
    "ScopeKind",
    "TransitionNotAllowed",
    "VersionAssets",
    "drift",
    "effective_state",
    "eligible_at",
    "ensure_deployable",
    "evaluate",
    "evaluate_rules",
    "expired",
    "is_active",
    "needs_reboot",
    "split_by_expiry",
    "transition",
    "version_sprawl",
]
