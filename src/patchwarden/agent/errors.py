"""The agent's exceptions. The CLI turns them into exit codes, nowhere else."""

from __future__ import annotations

from typing import Optional


class AgentError(Exception):
    """Root of every error the agent raises on purpose."""


class UsageError(AgentError):
    """Bad input from the operator (arguments, files, configuration)."""


class NotEnrolledError(AgentError):
    """`run` was asked for before `enroll` stored credentials."""


class StateError(AgentError):
    """The state directory is unusable (unreadable, corrupt, locked)."""


class ServerUnreachableError(AgentError):
    """The server could not be reached or did not answer in time: transient."""


class ServerError(AgentError):
    """The server answered with an error status.

    `code` and `detail` come from its JSON body `{"error": ..., "message": ...}`
    when it sent one.
    """

    def __init__(
        self, status: int, code: Optional[str] = None, detail: Optional[str] = None
    ) -> None:
        self.status = status
        self.code = code
        self.detail = detail
        text = "server answered HTTP %d" % status
        if code:
            text += " (%s)" % code
        if detail:
            text += ": %s" % detail
        super().__init__(text)


class CredentialRefusedError(ServerError):
    """401/403: the token or credential is invalid, expired or revoked.

    Retrying cannot help; an operator has to enrol the host again.
    """
