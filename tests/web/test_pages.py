"""The web pages in a real headless Chromium against a real server process
(uvicorn in a thread): log in, see the inventory, open an asset."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import Engine, select

from patchwarden.domain.inventory import AgentReport, Facts, InstalledPackage
from patchwarden.services import agent_jobs, agents, groups, ingest, job_signing, rollouts, users
from patchwarden.storage.db import make_session_factory, transaction
from patchwarden.storage.tables import Agent, Asset
from tests.api.conftest import PASSWORD, build_app
from tests.services.test_rollouts import add_patch, approve, offer

CHROMIUM = shutil.which("chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def live_server(sqlite_engine: Engine, tmp_path: Path) -> Iterator[str]:
    factory = make_session_factory(sqlite_engine)
    with transaction(factory) as session:
        users.create_user(session, "test", "ops", PASSWORD, "viewer")
        enrolment_token, _ = agents.create_enrollment_token(
            session, "test", __import__("datetime").timedelta(hours=1)
        )
        enrolled = agents.enroll(session, enrolment_token, "web-01", None, "test")
        agent = session.get(Agent, enrolled.agent_id)
        assert agent is not None
        packages = [
            InstalledPackage("deb", "openssl", "3.0.11-1~deb12u2", "amd64", "openssl"),
            InstalledPackage("deb", "bash", "5.2.15-2+b2", "amd64", "bash"),
        ]
        facts = Facts(
            hostname="web-01",
            os_id="debian",
            os_version_id="12",
            os_pretty_name="Debian GNU/Linux 12 (bookworm)",
            kernel="6.1.0-18-amd64",
        )
        ingest.ingest_agent_report(
            session,
            agent,
            AgentReport(
                asset_id=enrolled.asset_id,
                seq=1,
                kind="full",
                base_seq=None,
                agent_version="test",
                facts=facts,
                collector_notes=[],
                packages=packages,
            ),
        )
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            build_app(sqlite_engine, tmp_path), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    yield url
    server.should_exit = True
    thread.join(timeout=10)


@pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (make test-deps installs it)"
)
def test_login_inventory_and_asset_page(live_server: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(live_server + "/")
        assert page.url.endswith("/login")

        page.fill("input[name=username]", "ops")
        page.fill("input[name=password]", "wrong password")
        page.click("button[type=submit]")
        assert "wrong username or password" in page.inner_text("[role=alert]")

        page.fill("input[name=username]", "ops")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_selector("#assets")
        assert page.inner_text("#asset-total") == "1"
        row = page.inner_text("#assets tbody tr")
        assert (
            "web-01" in row and "Debian GNU/Linux 12 (bookworm)" in row and "6.1.0-18-amd64" in row
        )
        page.screenshot(path=str(tmp_path / "assets.png"), full_page=True)

        page.click("text=web-01")
        page.wait_for_selector("#packages")
        packages = page.inner_text("#packages")
        assert "openssl" in packages and "3.0.11-1~deb12u2" in packages and "bash" in packages
        page.screenshot(path=str(tmp_path / "asset.png"), full_page=True)

        page.click("text=Log out")
        assert page.url.endswith("/login")
        page.goto(live_server + "/")
        assert page.url.endswith("/login")
        browser.close()
    stamp = datetime.now(UTC)
    assert (tmp_path / "assets.png").stat().st_size > 1000, stamp


def halted_rollout(engine: Engine, tmp_path: Path) -> int:
    """A rollout of web-01 whose job failed a smoke test and was rolled back."""
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        asset_id = session.execute(select(Asset.id).where(Asset.hostname == "web-01")).scalar_one()
        groups.create_static(session, "test", "web", [asset_id])
    patch = add_patch(factory, "openssl", "3.0.15-1~deb12u1")
    approve(factory, patch)
    offer(factory, asset_id, patch)
    with transaction(factory) as session:
        spec = rollouts.RolloutSpec("openssl 3.0.15", (patch,), (rollouts.RingSpec("lab", "web"),))
        rollout_id = rollouts.create(session, "test", spec)
        rollouts.start(session, "test", rollout_id)
    rollouts.tick(factory)
    signer = job_signing.load_or_create(tmp_path / "job-signing-key.pem")
    with transaction(factory) as session:
        agent = session.execute(select(Agent).where(Agent.asset_id == asset_id)).scalar_one()
        [(job, _)] = agent_jobs.pending_jobs(session, asset_id)
        agent_jobs.envelopes(session, signer, [(job, _)])
        agent_jobs.start(session, agent, job.id, 1)
        agent_jobs.record_result(
            session,
            agent,
            job.id,
            {
                "protocol": 1,
                "job_id": job.id,
                "attempt": 1,
                "status": "rolled_back",
                "phase": "smoke_test",
                "error": "smoke test health failed: HTTP 503",
                "before": {"openssl": "3.0.11-1~deb12u2"},
                "after": {"openssl": "3.0.11-1~deb12u2"},
                "smoke_tests": [{"name": "health", "ok": False, "detail": "HTTP 503"}],
                "log": "",
            },
        )
    rollouts.tick(factory)
    return rollout_id


@pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (make test-deps installs it)"
)
def test_rollout_pages(live_server: str, sqlite_engine: Engine, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    rollout_id = halted_rollout(sqlite_engine, tmp_path)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(live_server + "/login")
        page.fill("input[name=username]", "ops")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_selector("#assets")
        page.click("header >> text=Rollouts")
        page.wait_for_selector("#rollouts")
        row = page.inner_text("#rollouts tbody tr")
        assert "openssl 3.0.15" in row and "halted" in row
        page.click("text=openssl 3.0.15")
        page.wait_for_selector("#ring-lab")
        assert page.inner_text("#rollout-state") == "halted"
        assert "max errors 0" in page.inner_text("#halt-reason")
        job = page.inner_text("#ring-lab tbody tr")
        assert "web-01" in job and "rolled_back" in job and "HTTP 503" in job
        assert "3.0.11-1~deb12u2 → 3.0.11-1~deb12u2" in job
        page.screenshot(path=str(tmp_path / "rollout.png"), full_page=True)
        page.goto(f"{live_server}/rollouts/{rollout_id + 1}")
        assert "not found" in page.inner_text("main")
        browser.close()
    assert (tmp_path / "rollout.png").stat().st_size > 1000
