"""One exception tree for the whole server side.

Errors turn into HTTP statuses (api/errors.py) or exit codes (cli/main.py) once,
at the boundary. Each message says what went wrong and, where it helps, what to do.
"""

from __future__ import annotations


class PatchwardenError(Exception):
    """Root of every error Patchwarden raises on purpose."""

    http_status = 500
    code = "internal_error"


class InvalidInput(PatchwardenError):
    """Input from outside (API body, file, CLI argument) broke a rule."""

    http_status = 422
    code = "invalid_input"


class NotFound(PatchwardenError):
    http_status = 404
    code = "not_found"


class Conflict(PatchwardenError):
    """The request is valid but clashes with the stored state."""

    http_status = 409
    code = "conflict"


class AuthenticationFailed(PatchwardenError):
    http_status = 401
    code = "authentication_failed"


class PermissionDenied(PatchwardenError):
    http_status = 403
    code = "permission_denied"


class PayloadTooLarge(PatchwardenError):
    http_status = 413
    code = "payload_too_large"


class FullReportRequired(Conflict):
    """The server lost track of the agent's inventory; the agent must send it whole."""

    code = "full_report_required"


class PolicyError(PatchwardenError):
    """A policy forbids the request: an approval step that is not allowed from
    the current state or by this user, a deployment of a patch that is not
    approved. Subclasses in patchwarden.policy.errors say which, each with its
    own status (403 for who may act, 409 for the state, 422 for a missing comment)."""

    http_status = 409
    code = "policy_violation"


class ConfigError(PatchwardenError):
    code = "config_error"


class RemoteError(PatchwardenError):
    """A remote host (SSH target) could not be reached or refused us."""

    http_status = 502
    code = "remote_error"


class HostKeyMismatch(RemoteError):
    """The SSH host key differs from the one trusted on first use."""

    code = "host_key_mismatch"


class RepositoryError(RemoteError):
    """A package repository (apt, rpm-md, apk) could not be fetched or read.

    Raised for the whole repository: a failed fetch yields nothing partial, so
    the caller keeps the last good metadata.
    """

    code = "repository_error"
