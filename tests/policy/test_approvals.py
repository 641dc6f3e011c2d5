"""The manual approval state machine: every (state, action) pair, who may act,
four-eyes, comments, and what the rollout engine may deploy."""

from __future__ import annotations

from typing import Any

import pytest

from patchwarden.errors import PolicyError
from patchwarden.policy import (
    APPROVAL_ACTIONS,
    TRANSITIONS,
    ApproverRequired,
    CommentRequired,
    FourEyesViolation,
    InvalidPolicy,
    NotDeployable,
    RuleOutcome,
    TransitionNotAllowed,
    effective_state,
    ensure_deployable,
    transition,
)

ALICE, BOB = 1, 2  # two approvers; Alice usually requested the patch

# Every (state, action): the new state, or the reason it is refused.
MATRIX = [
    (None, "request", "pending"),
    (None, "approve", "it has not been requested; request it first"),
    (None, "decline", "declined"),
    (None, "lift", "it is not declined"),
    (None, "revoke", "it is not approved"),
    ("pending", "request", "it is already requested"),
    ("pending", "approve", "approved"),
    ("pending", "decline", "declined"),
    ("pending", "lift", "it is not declined"),
    ("pending", "revoke", "it is not approved yet; decline it instead"),
    ("approved", "request", "it is already approved"),
    ("approved", "approve", "it is already approved"),
    ("approved", "decline", "declined"),
    ("approved", "lift", "it is not declined"),
    ("approved", "revoke", "pending"),
    ("declined", "request", "it is declined; lift the decline first"),
    ("declined", "approve", "it is declined; lift the decline first"),
    ("declined", "decline", "it is already declined"),
    ("declined", "lift", "pending"),
    ("declined", "revoke", "it is declined, not approved"),
]


def test_matrix_covers_every_pair() -> None:
    pairs = {(state, action) for state, action, _ in MATRIX}
    assert len(pairs) == 4 * len(APPROVAL_ACTIONS) == len(MATRIX)
    allowed = {(s, a): r for s, a, r in MATRIX if r in ("pending", "approved", "declined")}
    assert allowed == dict(TRANSITIONS)


@pytest.mark.parametrize(("state", "action", "result"), MATRIX)
def test_transition_matrix(state: Any, action: Any, result: str) -> None:
    def run() -> str:
        return transition(state, action, BOB, ALICE, True, True, "checked in the test lab")

    if result in ("pending", "approved", "declined"):
        assert run() == result
    else:
        with pytest.raises(TransitionNotAllowed) as info:
            run()
        assert result in str(info.value)
        assert str(info.value).startswith(
            f"cannot {action} a patch that is {state or 'not requested'}"
        )
        assert (info.value.state, info.value.action) == (state, action)
        assert info.value.http_status == 409


@pytest.mark.parametrize("state", [None, "pending", "approved", "declined"])
@pytest.mark.parametrize("action", ["approve", "decline", "lift", "revoke"])
def test_operators_cannot_decide(state: Any, action: Any) -> None:
    # Checked before the state: an operator learns that the action is not theirs.
    with pytest.raises(ApproverRequired, match=f"only an approver may {action}") as info:
        transition(state, action, BOB, ALICE, False, False, "because")
    assert info.value.http_status == 403


def test_operators_may_request() -> None:
    assert transition(None, "request", BOB, None, False, True) == "pending"


@pytest.mark.parametrize(
    ("state", "action", "actor", "requester", "four_eyes", "result"),
    [
        ("pending", "approve", BOB, ALICE, True, "approved"),
        ("pending", "approve", ALICE, ALICE, False, "approved"),  # four-eyes off
        ("pending", "approve", ALICE, ALICE, True, FourEyesViolation),
        ("pending", "approve", ALICE, None, True, FourEyesViolation),  # cannot be checked
        ("pending", "approve", ALICE, None, False, "approved"),
        ("pending", "decline", ALICE, ALICE, True, "declined"),  # withdrawing is fine
        ("declined", "lift", ALICE, ALICE, True, "pending"),
        ("approved", "revoke", ALICE, ALICE, True, "pending"),
    ],
)
def test_four_eyes(
    state: Any, action: Any, actor: int, requester: int | None, four_eyes: bool, result: Any
) -> None:
    def run() -> str:
        return transition(state, action, actor, requester, True, four_eyes, "reason given")

    if isinstance(result, str):
        assert run() == result
    else:
        with pytest.raises(result) as info:
            run()
        assert info.value.http_status == 403
        assert "four-eyes" in str(info.value)


@pytest.mark.parametrize(
    ("state", "action"),
    [(None, "decline"), ("pending", "decline"), ("approved", "decline"), ("approved", "revoke")],
)
@pytest.mark.parametrize("comment", [None, "", "   \n\t"])
def test_decline_and_revoke_need_a_comment(state: Any, action: Any, comment: str | None) -> None:
    with pytest.raises(CommentRequired, match=f"a {action} needs a comment") as info:
        transition(state, action, BOB, ALICE, True, True, comment)
    assert info.value.http_status == 422


@pytest.mark.parametrize(
    ("state", "action"), [(None, "request"), ("pending", "approve"), ("declined", "lift")]
)
def test_other_actions_need_no_comment(state: Any, action: Any) -> None:
    assert transition(state, action, BOB, ALICE, True, True, None) in TRANSITIONS.values()


@pytest.mark.parametrize(
    ("state", "action", "comment", "error"),
    [
        ("bogus", "approve", None, "unknown approval state 'bogus'"),
        ("pending", "accept", None, "unknown approval action 'accept'"),
        ("pending", "approve", "x" * 4001, "at most 4000"),
        ("pending", "approve", 42, "a comment must be text"),
    ],
)
def test_bad_arguments(state: Any, action: Any, comment: Any, error: str) -> None:
    with pytest.raises(InvalidPolicy, match=error):
        transition(state, action, BOB, ALICE, True, True, comment)


def test_errors_are_policy_errors() -> None:
    for error in (ApproverRequired, FourEyesViolation, CommentRequired, TransitionNotAllowed):
        assert issubclass(error, PolicyError)
    assert issubclass(NotDeployable, PolicyError)
    assert {e.code for e in (ApproverRequired, FourEyesViolation, CommentRequired)} == {
        "approver_required",
        "four_eyes_violation",
        "comment_required",
    }


# -- what the rollout engine may deploy ------------------------------------------------


@pytest.mark.parametrize(
    ("state", "comment", "message"),
    [
        (
            "declined",
            "breaks the ERP client",
            "patch openssl 3.0.11 is declined: breaks the ERP client",
        ),
        ("declined", None, "patch openssl 3.0.11 is declined: no reason recorded"),
        ("pending", None, "patch openssl 3.0.11 is awaiting approval"),
        (None, None, "patch openssl 3.0.11 has not been approved"),
    ],
)
def test_ensure_deployable_refuses(state: Any, comment: str | None, message: str) -> None:
    with pytest.raises(NotDeployable) as info:
        ensure_deployable(state, "openssl 3.0.11", comment)
    assert str(info.value).startswith(message)
    assert (info.value.patch, info.value.state, info.value.http_status) == (
        "openssl 3.0.11",
        state,
        409,
    )


def test_ensure_deployable_passes_approved() -> None:
    ensure_deployable("approved", "openssl 3.0.11")
    with pytest.raises(InvalidPolicy, match="unknown approval state"):
        ensure_deployable("maybe", "openssl 3.0.11")  # type: ignore[arg-type]


_APPROVE = RuleOutcome("approve", "security", ("classification security is in {security}",))
_NO = RuleOutcome("no_match", "security", ("x",), ("x",))


@pytest.mark.parametrize(
    ("manual", "automatic", "effective"),
    [
        ("declined", _APPROVE, "declined"),  # a manual decline beats every rule
        ("approved", _NO, "approved"),
        ("approved", None, "approved"),
        ("pending", _APPROVE, "approved"),
        (None, _APPROVE, "approved"),
        ("pending", _NO, "pending"),
        (None, _NO, None),
        (None, None, None),
    ],
)
def test_effective_state(manual: Any, automatic: RuleOutcome | None, effective: Any) -> None:
    assert effective_state(manual, automatic) == effective
