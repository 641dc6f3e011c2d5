from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agent.fake_server import FakeServer
from tests.agent.jobkit import job_repo  # noqa: F401 - the fixture, for every agent test


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer() as running:
        yield running


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A self-signed certificate for 127.0.0.1; key and certificate in one PEM."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: cannot make a test certificate")
    directory = tmp_path_factory.mktemp("tls")
    key, cert = directory / "key.pem", directory / "cert.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=patchwarden-test", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    combined = directory / "combined.pem"
    combined.write_bytes(key.read_bytes() + cert.read_bytes())
    return cert


@pytest.fixture
def tls_server(tls_cert: Path) -> Iterator[FakeServer]:
    with FakeServer(certfile=str(tls_cert.parent / "combined.pem")) as running:
        yield running
