"""The manual approval state machine of a patch (per baseline/group).

States: None (never requested), "pending" (requested), "approved", "declined".

=========  =========  ========  ========  ========  ========
from       request    approve   decline   lift      revoke
=========  =========  ========  ========  ========  ========
None       pending    -         declined  -         -
pending    -          approved  declined  -         -
approved   -          -         declined  -         pending
declined   -          -         -         pending   -
=========  =========  ========  ========  ========  ========

Who and why, checked in this order by `transition`:

1. approve, decline, lift and revoke need a user who may approve
   (`ApproverRequired`, 403); anyone may request.
2. The action must be allowed from the current state (`TransitionNotAllowed`,
   409). Repeating a transition is refused, not ignored: approving an approved
   patch, declining a declined one or requesting a pending one is a 409. Every
   stored state then has exactly one actor, and a retried API call learns the
   state from the 409 instead of writing a second audit event.
3. decline and revoke need a comment saying why (`CommentRequired`, 422);
   comments are trimmed and at most 4000 characters for every action.
4. With four-eyes on, nobody approves their own request (`FourEyesViolation`,
   403). Declining one's own request is allowed: it withdraws a change, never
   pushes one. A decline needs no request first, an approval does.

Who the requester is: whoever moved the patch into "pending" (request, lift,
revoke). The caller records ``requester_id = actor_id`` on those transitions,
so lifting a decline or revoking an approval and then approving it again
takes a second person under four-eyes.

A manual decline beats every auto-approval rule (`effective_state`).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, Literal

from patchwarden.policy.errors import (
    ApproverRequired,
    CommentRequired,
    FourEyesViolation,
    InvalidPolicy,
    NotDeployable,
    TransitionNotAllowed,
)
from patchwarden.policy.rules import RuleOutcome

ApprovalState = Literal["pending", "approved", "declined"]
ApprovalAction = Literal["request", "approve", "decline", "lift", "revoke"]

APPROVAL_STATES: Final[tuple[ApprovalState, ...]] = ("pending", "approved", "declined")
APPROVAL_ACTIONS: Final[tuple[ApprovalAction, ...]] = (
    "request",
    "approve",
    "decline",
    "lift",
    "revoke",
)
MAX_COMMENT_LENGTH: Final = 4000

TRANSITIONS: Final[Mapping[tuple[ApprovalState | None, ApprovalAction], ApprovalState]] = (
    MappingProxyType(
        {
            (None, "request"): "pending",
            (None, "decline"): "declined",
            ("pending", "approve"): "approved",
            ("pending", "decline"): "declined",
            ("approved", "decline"): "declined",
            ("approved", "revoke"): "pending",
            ("declined", "lift"): "pending",
        }
    )
)
_NEEDS_APPROVER: Final = frozenset({"approve", "decline", "lift", "revoke"})
_NEEDS_COMMENT: Final = frozenset({"decline", "revoke"})

# Why an action is refused from a state, with what to do instead.
_REFUSALS: Final[Mapping[tuple[ApprovalState | None, ApprovalAction], str]] = MappingProxyType(
    {
        (None, "approve"): "it has not been requested; request it first",
        (None, "lift"): "it is not declined",
        (None, "revoke"): "it is not approved",
        ("pending", "request"): "it is already requested and awaits approval",
        ("pending", "lift"): "it is not declined",
        ("pending", "revoke"): "it is not approved yet; decline it instead",
        ("approved", "request"): "it is already approved",
        ("approved", "approve"): "it is already approved",
        ("approved", "lift"): "it is not declined",
        ("declined", "request"): "it is declined; lift the decline first",
        ("declined", "approve"): "it is declined; lift the decline first",
        ("declined", "decline"): "it is already declined",
        ("declined", "revoke"): "it is declined, not approved",
    }
)


def _comment(comment: object) -> str:
    if comment is None:
        return ""
    if not isinstance(comment, str):
        raise InvalidPolicy(f"a comment must be text, not {type(comment).__name__}")
    text = comment.strip()
    if len(text) > MAX_COMMENT_LENGTH:
        raise InvalidPolicy(
            f"the comment is {len(text)} characters long; at most {MAX_COMMENT_LENGTH} are allowed"
        )
    return text


def transition(
    current_state: ApprovalState | None,
    action: ApprovalAction,
    actor_id: int,
    requester_id: int | None,
    actor_can_approve: bool,
    four_eyes: bool,
    comment: str | None = None,
) -> ApprovalState:
    """The state after `actor_id` does `action` on a patch in `current_state`.

    `requester_id` is who moved the patch into "pending" (None when it never
    was). Raises the errors listed in the module docstring, in that order;
    InvalidPolicy for an unknown state or action or an over-long comment.
    Store ``comment.strip()``: that is what was checked.
    """
    if current_state is not None and current_state not in APPROVAL_STATES:
        raise InvalidPolicy(
            f"unknown approval state {current_state!r}; valid: {', '.join(APPROVAL_STATES)} "
            "(or none)"
        )
    if action not in APPROVAL_ACTIONS:
        raise InvalidPolicy(
            f"unknown approval action {action!r}; valid: {', '.join(APPROVAL_ACTIONS)}"
        )
    text = _comment(comment)
    if action in _NEEDS_APPROVER and not actor_can_approve:
        raise ApproverRequired(
            f"only an approver may {action} a patch; ask a user with the approver role"
        )
    new_state = TRANSITIONS.get((current_state, action))
    if new_state is None:
        shown = current_state or "not requested"
        raise TransitionNotAllowed(
            f"cannot {action} a patch that is {shown}: {_REFUSALS[(current_state, action)]}",
            current_state,
            action,
        )
    if action in _NEEDS_COMMENT and not text:
        raise CommentRequired(f"say why: a {action} needs a comment")
    if action == "approve" and four_eyes:
        if requester_id is None:
            raise FourEyesViolation(
                "four-eyes approval is on but the patch has no recorded requester, so it "
                "cannot be checked that someone else asked for it"
            )
        if requester_id == actor_id:
            raise FourEyesViolation(
                "four-eyes approval is on: you requested this patch, so another approver "
                "must approve it"
            )
    return new_state


def effective_state(
    manual: ApprovalState | None, automatic: RuleOutcome | None
) -> ApprovalState | None:
    """The state that counts for deployment: a manual decline always wins; a
    manual approval or an approving rule outcome approves; otherwise the manual
    state (pending or None) stands."""
    if manual == "declined":
        return "declined"
    if manual == "approved" or (automatic is not None and automatic.approved):
        return "approved"
    return manual


def ensure_deployable(state: ApprovalState | None, patch: str, comment: str | None = None) -> None:
    """Raise NotDeployable unless `state` (see `effective_state`) is "approved".

    `comment` is the decline's reason, quoted in the message.
    """
    if state == "approved":
        return
    if state is not None and state not in APPROVAL_STATES:
        raise InvalidPolicy(f"unknown approval state {state!r} of patch {patch}")
    if state == "declined":
        reason = (comment or "").strip() or "no reason recorded"
        message = (
            f"patch {patch} is declined: {reason}; an approver must lift the decline "
            "and approve it before it can be deployed"
        )
    elif state == "pending":
        message = f"patch {patch} is awaiting approval; an approver must approve it first"
    else:
        message = (
            f"patch {patch} has not been approved; request approval, or cover it with an "
            "auto-approval rule"
        )
    raise NotDeployable(message, patch, state)
