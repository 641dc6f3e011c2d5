"""A small in-process Patchwarden server speaking agent protocol v1.

Real HTTP on 127.0.0.1 (stdlib http.server in a thread), with the protocol's
semantics: one-time enrolment tokens, bearer credentials, strictly increasing
seq, deltas applied only on top of the acknowledged base, 409
full_report_required otherwise.
"""

from __future__ import annotations

import json
import secrets
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from patchwarden.protocol.v1 import PackageKey, package_key, validate_package


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
                    if self.path == "/api/v1/agent/enroll":
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

            def _answer(self, status: int, answer: dict[str, Any]) -> None:
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler
