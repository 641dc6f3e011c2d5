"""Errors of the policy core, in the project's one exception tree.

Two families:

* bad policy *input* (a package pattern, a rule, a risk acceptance, a
  baseline entry): :class:`InvalidPolicy`, an ``InvalidInput`` (422);
* a valid request that the approval policy forbids: subclasses of
  :class:`~patchwarden.errors.PolicyError`, each with the status that tells the
  client what to do (403: someone else must act; 409: the state does not allow
  it; 422: say why).
"""

from __future__ import annotations

from patchwarden.errors import InvalidInput, PolicyError


class InvalidPolicy(InvalidInput):
    """A rule, risk acceptance or baseline entry broke a validation rule."""

    code = "invalid_policy"


class InvalidPattern(InvalidPolicy):
    """A package name pattern that is not a valid glob; ``position`` is 1-based
    (0 when the whole text is at fault, e.g. empty)."""

    code = "invalid_pattern"

    def __init__(self, text: str, position: int, problem: str) -> None:
        self.text = text
        self.position = position
        self.problem = problem
        where = f" at position {position}" if position else ""
        super().__init__(
            f"invalid package pattern {text!r}{where}: {problem}. Patterns are shell-style "
            "globs over package names: letters, digits and + - . _ : with * (any run), "
            "? (one character) and [abc] / [a-z] / [!abc] (one of / none of)"
        )


class ApproverRequired(PolicyError):
    """Only a user who may approve patches can approve, decline, lift or revoke."""

    http_status = 403
    code = "approver_required"


class FourEyesViolation(PolicyError):
    """Four-eyes is on and the approver is the one who requested the patch."""

    http_status = 403
    code = "four_eyes_violation"


class CommentRequired(PolicyError):
    """Declining or revoking needs a comment saying why."""

    http_status = 422
    code = "comment_required"


class TransitionNotAllowed(PolicyError):
    """The action is not possible from the patch's current approval state."""

    code = "transition_not_allowed"

    def __init__(self, message: str, state: str | None, action: str) -> None:
        self.state = state
        self.action = action
        super().__init__(message)


class NotDeployable(PolicyError):
    """A patch that is not approved (declined, pending, never requested) was to be deployed."""

    code = "not_deployable"

    def __init__(self, message: str, patch: str, state: str | None) -> None:
        self.patch = patch
        self.state = state
        super().__init__(message)
