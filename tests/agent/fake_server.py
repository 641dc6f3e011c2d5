"""A small in-process Patchwarden server speaking agent protocol v1.

Real HTTP on 127.0.0.1 (stdlib http.server in a thread), with the protocol's
semantics: one-time enrolment tokens, bearer credentials, strictly increasing
seq, deltas applied only on top of the acknowledged base, 409
full_report_required otherwise. Rollout jobs too (protocol/jobs.py): jobs
signed with an Ed25519 key (`cryptography`, as the real server signs),
handed out by poll until their attempt has a result, start, result (first
one stored, repeats acknowledged as duplicates) and the signing-key endpoint.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import secrets
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from patchwarden.protocol import jobs as job_protocol
from patchwarden.protocol.v1 import PackageKey, package_key, validate_package

JOB_START_RE = re.compile(r"^/api/v1/agent/jobs/([0-9]+)/start$")
JOB_RESULT_RE = re.compile(r"^/api/v1/agent/jobs/([0-9]+)/result$")


@dataclass
class JobRecord:
    envelope: dict[str, Any]
    asset_id: int
    cancelled: bool = False
    redeliver: bool = False  # keep handing it out even after a result (a lost answer)
    starts: list[int] = field(default_factory=list)
    results: dict[int, dict[str, Any]] = field(default_factory=dict)  # by attempt

    @property
    def job(self) -> dict[str, Any]:
        job: dict[str, Any] = self.envelope["job"]
        return job


@dataclass
class AgentRecord:
    agent_id: int
    asset_id: int
    hostname: str
    machine_id: str | None
    revoked: bool = False
    last_seq: int = 0
    acked_seq: int | None = None
    inventory: dict[PackageKey, dict[str, Any]] = field(default_factory=dict)


class FakeServer:
    def __init__(self, report_interval: int = 300, certfile: str | None = None) -> None:
        self.report_interval = report_interval
        self.tokens: set[str] = {"good-token"}
        self.agents: dict[str, AgentRecord] = {}  # by credential
        self.reports: list[dict[str, Any]] = []  # every report body received
        self.responses: list[int] = []  # status of every report answer
        self.enrolments: list[dict[str, Any]] = []
        self.force_full_next = False  # answer the next delta with 409
        self.fail_next_with: int | None = None  # answer the next report with this status
        # Rollout jobs.
        self.signing_key = Ed25519PrivateKey.generate()
        self.key_at_enrolment = True  # False: an older server, the agent must fetch the key
        self.jobs: dict[int, JobRecord] = {}
        self.release: list[int] = []  # finished rollouts (answered when the agent keeps them)
        self.jobs_supported = True  # False: a server from before rollout jobs (404)
        self.poll_interval: int | None = None
        self.polls: list[dict[str, Any]] = []
        self.result_posts: list[dict[str, Any]] = []  # every result body received
        self.fail_results_with: int | None = None  # answer result posts with this status
        self.key_fetches = 0
        self.lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._scheme = "http"
        if certfile:  # HTTPS with a test certificate (key and cert in one PEM file)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(certfile)
            self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
            self._scheme = "https"
        # A short poll interval keeps shutdown (and so each test) fast.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"{self._scheme}://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> FakeServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def only_agent(self) -> AgentRecord:
        (agent,) = self.agents.values()
        return agent

    # -- jobs --------------------------------------------------------------

    @property
    def public_key(self) -> bytes:
        return self.signing_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def public_key_b64(self) -> str:
        return base64.b64encode(self.public_key).decode()

    @property
    def key_id(self) -> str:
        return job_protocol.key_id(self.public_key)

    def sign(self, job: dict[str, Any], key: Ed25519PrivateKey | None = None) -> dict[str, Any]:
        signature = (key or self.signing_key).sign(job_protocol.canonical_bytes(job))
        return {
            "job": job,
            "signature": base64.b64encode(signature).decode(),
            "key_id": self.key_id,
        }

    def add_job(
        self,
        job: dict[str, Any],
        *,
        key: Ed25519PrivateKey | None = None,
        tamper: dict[str, Any] | None = None,
        unsigned: bool = False,
        redeliver: bool = False,
    ) -> JobRecord:
        """Queue a job for its asset: signed with the server's key (or `key`),
        then changed by `tamper` after signing, or with no signature at all."""
        envelope = self.sign(job, key)
        if tamper:
            envelope["job"] = {**copy.deepcopy(job), **tamper}
        if unsigned:
            del envelope["signature"]
        record = JobRecord(envelope, job["asset_id"], redeliver=redeliver)
        with self.lock:
            self.jobs[job["job_id"]] = record
        return record

    def result_of(self, job_id: int, attempt: int = 1) -> dict[str, Any]:
        return self.jobs[job_id].results[attempt]

    def poll(self, credential: str | None, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.polls.append(body)
        agent = self.agents.get(credential or "")
        if agent is None or agent.revoked:
            return 401, {"error": "invalid_credential", "message": "credential revoked"}
        if body.get("protocol") != 1 or body.get("asset_id") != agent.asset_id:
            return 400, {"error": "bad_request", "message": "wrong protocol or asset"}
        # Every agent gets every job: the tests use one agent, and a job for
        # another asset (a confused or compromised server) must be refused by
        # the agent itself.
        envelopes = [
            record.envelope
            for _, record in sorted(self.jobs.items())
            if not record.cancelled
            and (record.redeliver or record.job.get("attempt") not in record.results)
        ]
        # As the real server: only finished rollouts among those the agent keeps.
        kept = body.get("kept", [])
        release = [r for r in self.release if r in kept]
        return 200, {"jobs": envelopes, "release": release, "poll_interval": self.poll_interval}

    def start(
        self, credential: str | None, job_id: int, body: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        if self.agents.get(credential or "") is None:
            return 401, {"error": "invalid_credential", "message": "unknown"}
        record = self.jobs.get(job_id)
        if record is None:
            return 404, {"error": "not_found", "message": "no such job"}
        if record.cancelled:
            return 409, {"error": "cancelled", "message": "job cancelled"}
        record.starts.append(int(body.get("attempt") or 0))
        return 200, {"status": "running"}

    def result(
        self, credential: str | None, job_id: int, body: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        self.result_posts.append(body)
        if self.agents.get(credential or "") is None:
            return 401, {"error": "invalid_credential", "message": "unknown"}
        if self.fail_results_with is not None:
            return self.fail_results_with, {"error": "unavailable", "message": "try later"}
        record = self.jobs.get(job_id)
        if record is None:
            return 404, {"error": "not_found", "message": "no such job"}
        problems = job_protocol.result_problems(body)
        if problems or body.get("job_id") != job_id:
            return 422, {"error": "invalid_result", "message": "; ".join(problems)}
        duplicate = body["attempt"] in record.results
        record.results.setdefault(body["attempt"], body)
        return 200, {"status": "recorded", "duplicate": duplicate}

    # -- protocol --------------------------------------------------------

    def enroll(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.enrolments.append(body)
        if body.get("protocol") != 1 or not isinstance(body.get("hostname"), str):
            return 400, {"error": "bad_request", "message": "protocol 1 with hostname required"}
        if body.get("token") not in self.tokens:
            return 401, {"error": "invalid_token", "message": "token unknown, expired or used"}
        self.tokens.discard(body["token"])
        credential = secrets.token_urlsafe(24)
        agent = AgentRecord(
            agent_id=len(self.agents) + 1,
            asset_id=100 + len(self.agents),
            hostname=body["hostname"],
            machine_id=body.get("machine_id"),
        )
        self.agents[credential] = agent
        return 201, {
            "agent_id": agent.agent_id,
            "asset_id": agent.asset_id,
            "credential": credential,
            "report_interval": self.report_interval,
            **(
                {"job_signing_key": self.public_key_b64, "job_signing_key_id": self.key_id}
                if self.key_at_enrolment
                else {}
            ),
        }

    def report(self, credential: str | None, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.reports.append(body)
        agent = self.agents.get(credential or "")
        if agent is None or agent.revoked:
            return 401, {"error": "invalid_credential", "message": "credential revoked"}
        if self.fail_next_with is not None:
            status, self.fail_next_with = self.fail_next_with, None
            return status, {"error": "unavailable", "message": "try later"}
        if body.get("protocol") != 1 or body.get("asset_id") != agent.asset_id:
            return 400, {"error": "bad_request", "message": "wrong protocol or asset"}
        seq = body.get("seq")
        if not isinstance(seq, int) or seq <= agent.last_seq:
            return 409, {"error": "stale_seq", "message": "seq must increase"}
        for name in ("facts", "collector_notes", "collected_at", "agent_version"):
            if name not in body:
                return 400, {"error": "bad_request", "message": "missing " + name}
        agent.last_seq = seq
        if body.get("kind") == "full":
            packages = body["packages"]
            if any(validate_package(p) for p in packages):
                return 422, {"error": "invalid_package", "message": "bad package"}
            agent.inventory = {package_key(p): p for p in packages}
        elif body.get("kind") == "delta":
            if self.force_full_next or body.get("base_seq") != agent.acked_seq:
                self.force_full_next = False
                return 409, {"error": "full_report_required", "message": "base_seq mismatch"}
            for package in body["removed"]:
                agent.inventory.pop(package_key(package), None)
            for package in body["added"]:
                agent.inventory[package_key(package)] = package
        else:
            return 400, {"error": "bad_request", "message": "kind must be full or delta"}
        agent.acked_seq = seq
        return 200, {
            "status": "accepted",
            "ack_seq": seq,
            "asset_id": agent.asset_id,
            "report_interval": self.report_interval,
        }

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length))
                except ValueError:
                    self._answer(400, {"error": "bad_json", "message": "body is not JSON"})
                    return
                auth = self.headers.get("Authorization") or ""
                credential = auth[len("Bearer ") :] if auth.startswith("Bearer ") else None
                with server.lock:
                    start, result = JOB_START_RE.match(self.path), JOB_RESULT_RE.match(self.path)
                    if self.path.startswith("/api/v1/agent/jobs/") and not server.jobs_supported:
                        status, answer = 404, {"detail": "Not Found"}
                    elif self.path == job_protocol.POLL_PATH:
                        status, answer = server.poll(credential, body)
                    elif start:
                        status, answer = server.start(credential, int(start.group(1)), body)
                    elif result:
                        status, answer = server.result(credential, int(result.group(1)), body)
                    elif self.path == "/api/v1/agent/enroll":
                        status, answer = server.enroll(body)
                    elif self.path == "/api/v1/agent/report":
                        status, answer = server.report(credential, body)
                        server.responses.append(status)
                    elif self.path.startswith("/moved/"):
                        self.send_response(307)
                        self.send_header("Location", "http://example.invalid/api")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    else:
                        status, answer = 404, {"detail": "Not Found"}
                self._answer(status, answer)

            def do_GET(self) -> None:
                auth = self.headers.get("Authorization") or ""
                credential = auth[len("Bearer ") :] if auth.startswith("Bearer ") else None
                with server.lock:
                    if self.path != job_protocol.SIGNING_KEY_PATH:
                        self._answer(404, {"detail": "Not Found"})
                    elif server.agents.get(credential or "") is None:
                        self._answer(401, {"error": "invalid_credential", "message": "unknown"})
                    else:
                        server.key_fetches += 1
                        self._answer(
                            200, {"key_id": server.key_id, "public_key": server.public_key_b64}
                        )

            def _answer(self, status: int, answer: dict[str, Any]) -> None:
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler
