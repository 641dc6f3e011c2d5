"""A small JSON-over-HTTPS client for the agent endpoints (urllib only)."""

from __future__ import annotations

import base64
import binascii
import http.client
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Dict, List, Optional, Sequence, Tuple

from patchwarden.agent import AGENT_VERSION
from patchwarden.agent.errors import (
    CredentialRefusedError,
    ServerError,
    ServerUnreachableError,
    UsageError,
)
from patchwarden.protocol.jobs import POLL_PATH, RESULT_PATH, SIGNING_KEY_PATH, START_PATH
from patchwarden.protocol.v1 import PROTOCOL_VERSION

ENROLL_PATH = "/api/v1/agent/enroll"
REPORT_PATH = "/api/v1/agent/report"
DEFAULT_TIMEOUT = 60.0
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
MAX_KEPT = 1000  # rollout ids with kept files named in one poll
USER_AGENT = "patchwarden-agent/%s" % AGENT_VERSION
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


def normalize_server_url(url: str, allow_http: bool = False) -> str:
    """The server's base URL without a trailing slash.

    Plain HTTP would expose the bearer credential, so it is refused except to
    this machine itself or when explicitly allowed.
    """
    parsed = urllib.parse.urlsplit(url.strip())
    if parsed.scheme not in ("https", "http") or not parsed.hostname:
        raise UsageError("server URL must look like https://patchwarden.example.com, got %r" % url)
    if parsed.query or parsed.fragment:
        raise UsageError("server URL must not have a query or fragment: %r" % url)
    if parsed.scheme == "http" and not allow_http and parsed.hostname not in LOOPBACK_HOSTS:
        raise UsageError(
            "refusing plain http:// to %s (the credential would travel unencrypted);"
            " use https:// or pass --allow-http" % parsed.hostname
        )
    return urllib.parse.urlunsplit((parsed.scheme, parsed.netloc, parsed.path.rstrip("/"), "", ""))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Never follow redirects: urllib would replay the Authorization header to
    wherever the redirect points (and turn POST into GET)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class AgentClient:
    def __init__(
        self,
        server: str,
        ca_file: Optional[str] = None,
        credential: Optional[str] = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.server = server.rstrip("/")
        self.credential = credential
        self.timeout = timeout
        context = ssl.create_default_context(cafile=ca_file)
        self._opener = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=context), _NoRedirect()
        )

    def enroll(self, token: str, hostname: str, machine_id: Optional[str]) -> Dict[str, Any]:
        """Trade a one-time enrolment token for a credential.

        Returns {"agent_id", "asset_id", "credential", "report_interval"}.
        """
        body = {
            "protocol": PROTOCOL_VERSION,
            "token": token,
            "hostname": hostname,
            "machine_id": machine_id,
            "agent_version": AGENT_VERSION,
        }
        status, answer = self._post(ENROLL_PATH, body, authorize=False)
        for field in ("agent_id", "asset_id"):
            if not isinstance(answer.get(field), int):
                raise ServerError(status, "bad_response", "enrol answer has no integer %s" % field)
        if not isinstance(answer.get("credential"), str) or not answer["credential"]:
            raise ServerError(status, "bad_response", "enrol answer has no credential")
        return answer

    def report(self, report: Dict[str, Any]) -> Dict[str, Any]:
        """Send one inventory report; returns the server's acknowledgement
        {"status": "accepted", "ack_seq", "asset_id", "report_interval"}."""
        status, answer = self._post(REPORT_PATH, report, authorize=True)
        if answer.get("status") != "accepted" or not isinstance(answer.get("ack_seq"), int):
            raise ServerError(status, "bad_response", "report answer has no accepted ack_seq")
        return answer

    # -- rollout jobs (protocol/jobs.py) ---------------------------------------------

    def poll_jobs(
        self, asset_id: int, running: Sequence[int], kept: Sequence[int] = ()
    ) -> Dict[str, Any]:
        """{"jobs": [envelope, ...], "release": [rollout_id, ...], "poll_interval": int|None}.
        `kept` names the rollouts whose package files this agent keeps (the
        server answers which of them are finished). Envelopes are returned as
        they came: verifying them is the caller's job."""
        body = {
            "protocol": PROTOCOL_VERSION,
            "asset_id": asset_id,
            "running": list(running),
            "kept": list(kept)[:MAX_KEPT],
        }
        status, answer = self._post(POLL_PATH, body, authorize=True)
        jobs, release = answer.get("jobs"), answer.get("release", [])
        if not isinstance(jobs, list) or not isinstance(release, list):
            raise ServerError(status, "bad_response", "job poll answer has no jobs list")
        releases: List[int] = [
            r for r in release if isinstance(r, int) and not isinstance(r, bool) and r > 0
        ]
        interval = answer.get("poll_interval")
        return {
            "jobs": jobs,
            "release": releases,
            "poll_interval": interval if isinstance(interval, int) and interval > 0 else None,
        }

    def start_job(self, job_id: int, attempt: int) -> Dict[str, Any]:
        """Tell the server the job starts; ServerError 409 means it was cancelled."""
        body = {"protocol": PROTOCOL_VERSION, "attempt": attempt}
        _, answer = self._post(START_PATH % job_id, body, authorize=True)
        return answer

    def send_result(self, job_id: int, result: Dict[str, Any]) -> Dict[str, Any]:
        """Send a RESULT; the answer is {"status": "recorded", "duplicate": bool}."""
        status, answer = self._post(RESULT_PATH % job_id, result, authorize=True)
        if answer.get("status") != "recorded":
            raise ServerError(status, "bad_response", "result answer is not 'recorded'")
        return answer

    def signing_key(self) -> Tuple[str, bytes]:
        """(key_id, raw 32-byte public key) of the server's job-signing key."""
        status, answer = self._request("GET", SIGNING_KEY_PATH, None, authorize=True)
        key_id, encoded = answer.get("key_id"), answer.get("public_key")
        if not isinstance(key_id, str) or not isinstance(encoded, str):
            raise ServerError(status, "bad_response", "signing-key answer lacks key_id/public_key")
        return key_id, decode_public_key(encoded, status)

    def _post(self, path: str, body: Dict[str, Any], authorize: bool) -> Tuple[int, Dict[str, Any]]:
        return self._request("POST", path, body, authorize)

    def _request(
        self, method: str, path: str, body: Optional[Dict[str, Any]], authorize: bool
    ) -> Tuple[int, Dict[str, Any]]:
        data = None if body is None else json.dumps(body, separators=(",", ":")).encode("utf-8")
        request = urllib.request.Request(  # noqa: S310 - scheme checked by normalize_server_url
            self.server + path, data=data, method=method
        )
        if data is not None:
            request.add_header("Content-Type", "application/json")
        request.add_header("Accept", "application/json")
        request.add_header("User-Agent", USER_AGENT)
        if authorize:
            if not self.credential:
                raise UsageError("no credential: enrol first")
            request.add_header("Authorization", "Bearer " + self.credential)
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                status = int(response.status)
                raw = response.read(MAX_RESPONSE_BYTES)
        except urllib.error.HTTPError as exc:
            raise _error_from_response(exc) from exc
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise ServerUnreachableError("cannot reach %s: %s" % (self.server, reason)) from exc
        try:
            answer = json.loads(raw.decode("utf-8"))
        except ValueError as exc:
            raise ServerError(status, "bad_response", "answer is not JSON") from exc
        if not isinstance(answer, dict):
            raise ServerError(status, "bad_response", "answer is not a JSON object")
        return status, answer


def decode_public_key(encoded: str, status: int = 200) -> bytes:
    """A base64 Ed25519 public key as its 32 raw bytes."""
    try:
        raw = base64.b64decode(encoded.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError, binascii.Error):
        raise ServerError(status, "bad_response", "job signing key is not base64") from None
    if len(raw) != 32:
        raise ServerError(status, "bad_response", "job signing key is not 32 bytes")
    return raw


def _error_from_response(exc: urllib.error.HTTPError) -> ServerError:
    """Turn an HTTP error status into our error, keeping the server's JSON
    {"error": code, "message": text} when it sent one."""
    code: Optional[str] = None
    detail: Optional[str] = None
    try:
        raw = exc.read(MAX_RESPONSE_BYTES)
        body = json.loads(raw.decode("utf-8"))
    except (OSError, ValueError, http.client.HTTPException):
        body = None
    finally:
        exc.close()
    if isinstance(body, dict):
        code = body.get("error") if isinstance(body.get("error"), str) else None
        detail = body.get("message") if isinstance(body.get("message"), str) else None
        # FastAPI's own errors (404, 422) say {"detail": ...}.
        if detail is None and body.get("detail") is not None:
            detail = str(body["detail"])[:500]
    if detail is None:
        detail = exc.reason if isinstance(exc.reason, str) else None
    if 300 <= exc.code < 400:
        detail = "redirect to %s not followed; enrol with the final URL" % exc.headers.get(
            "Location", "?"
        )
    if exc.code in (401, 403):
        return CredentialRefusedError(exc.code, code, detail)
    return ServerError(exc.code, code, detail)
