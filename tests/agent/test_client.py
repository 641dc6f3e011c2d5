from __future__ import annotations

import socket
from pathlib import Path

import pytest

from patchwarden.agent.client import AgentClient, normalize_server_url
from patchwarden.agent.errors import (
    CredentialRefusedError,
    ServerError,
    ServerUnreachableError,
    UsageError,
)
from tests.agent.fake_server import FakeServer


def test_enroll_and_report(server: FakeServer) -> None:
    client = AgentClient(server.url)
    answer = client.enroll("good-token", "web1", "0123456789abcdef0123456789abcdef")
    assert answer["agent_id"] == 1
    assert answer["asset_id"] == 100
    assert server.enrolments[0] == {
        "protocol": 1,
        "token": "good-token",
        "hostname": "web1",
        "machine_id": "0123456789abcdef0123456789abcdef",
        "agent_version": "0.1.0",
    }
    client.credential = answer["credential"]
    ack = client.report(
        {
            "protocol": 1,
            "asset_id": 100,
            "seq": 1,
            "kind": "full",
            "base_seq": None,
            "agent_version": "0.1.0",
            "collected_at": "2024-01-01T00:00:00+00:00",
            "facts": {},
            "collector_notes": [],
            "packages": [],
        }
    )
    assert ack == {"status": "accepted", "ack_seq": 1, "asset_id": 100, "report_interval": 300}


def test_used_token_is_refused_with_the_servers_reason(server: FakeServer) -> None:
    AgentClient(server.url).enroll("good-token", "a", None)
    with pytest.raises(CredentialRefusedError) as caught:
        AgentClient(server.url).enroll("good-token", "b", None)
    assert caught.value.status == 401
    assert caught.value.code == "invalid_token"
    assert caught.value.detail == "token unknown, expired or used"
    assert "HTTP 401 (invalid_token)" in str(caught.value)


def test_non_protocol_errors_keep_status_and_detail(server: FakeServer) -> None:
    client = AgentClient(server.url + "/nowhere", credential="x")
    with pytest.raises(ServerError) as caught:
        client.report({})
    assert (caught.value.status, caught.value.detail) == (404, "Not Found")
    assert not isinstance(caught.value, CredentialRefusedError)


def test_redirects_are_not_followed(server: FakeServer) -> None:
    with pytest.raises(ServerError) as caught:
        AgentClient(server.url + "/moved", credential="secret").report({})
    assert caught.value.status == 307
    assert "not followed" in str(caught.value)


def test_unreachable_server() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ServerUnreachableError, match="cannot reach"):
        AgentClient(f"http://127.0.0.1:{port}", timeout=5).enroll("t", "h", None)


def test_server_url_rules() -> None:
    assert normalize_server_url("https://pw.example.com/") == "https://pw.example.com"
    assert normalize_server_url("https://pw.example.com/base/") == "https://pw.example.com/base"
    assert normalize_server_url("http://127.0.0.1:8000") == "http://127.0.0.1:8000"
    assert normalize_server_url("http://[::1]:8000") == "http://[::1]:8000"
    assert normalize_server_url("http://pw.lan", allow_http=True) == "http://pw.lan"
    with pytest.raises(UsageError, match="refusing plain http"):
        normalize_server_url("http://pw.example.com")
    for bad in ("ftp://pw", "pw.example.com", "https://pw.example.com/?a=1"):
        with pytest.raises(UsageError):
            normalize_server_url(bad)


def test_https_with_ca_file(tls_server: FakeServer, tls_cert: Path) -> None:
    assert tls_server.url.startswith("https://")
    answer = AgentClient(tls_server.url, ca_file=str(tls_cert)).enroll("good-token", "h", None)
    assert answer["asset_id"] == 100


def test_https_certificate_is_verified(tls_server: FakeServer) -> None:
    # Without the CA file the self-signed certificate is not trusted.
    with pytest.raises(ServerUnreachableError, match="CERTIFICATE_VERIFY_FAILED"):
        AgentClient(tls_server.url).enroll("good-token", "h", None)
    assert tls_server.enrolments == []


# -- rollout job endpoints ---------------------------------------------------------------


def _enrolled(server: FakeServer) -> AgentClient:
    client = AgentClient(server.url)
    answer = client.enroll("good-token", "web1", None)
    assert answer["job_signing_key"] == server.public_key_b64
    client.credential = answer["credential"]
    return client


def test_job_endpoints(server: FakeServer) -> None:
    from tests.agent.jobkit import job

    client = _enrolled(server)
    assert client.signing_key() == (server.key_id, server.public_key)
    server.add_job(job())
    server.release, server.poll_interval = [3, "x", -1, True], 30  # type: ignore[list-item]
    answer = client.poll_jobs(100, [5], [3, 4])
    assert server.polls[-1] == {"protocol": 1, "asset_id": 100, "running": [5], "kept": [3, 4]}
    assert answer["release"] == [3] and answer["poll_interval"] == 30
    (envelope,) = answer["jobs"]
    assert envelope["job"]["job_id"] == 1 and envelope["key_id"] == server.key_id
    assert client.start_job(1, 1) == {"status": "running"}
    server.jobs[1].cancelled = True
    with pytest.raises(ServerError) as cancelled:
        client.start_job(1, 1)
    assert cancelled.value.status == 409


def test_bad_job_answers(server: FakeServer) -> None:
    from patchwarden.agent.client import decode_public_key

    client = _enrolled(server)
    with pytest.raises(ServerError, match="404"):
        client.send_result(99, {"job_id": 99})  # the fake server has no job 99
    for bad in ("not base64!", "AAAA"):
        with pytest.raises(ServerError, match="signing key"):
            decode_public_key(bad)
    client.credential = "wrong"
    with pytest.raises(CredentialRefusedError):
        client.signing_key()
