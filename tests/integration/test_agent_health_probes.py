"""``python -m services.trainer_agent`` with BRIGHTRUN_AGENT_HEALTH_PORT
answers the kubelet's probes from its own process, against a real NATS that
the test stops and starts: not ready while NATS is away, alive throughout,
ready again once NATS is back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from services.common.components import Nats, free_port

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def _until(port: int, path: str, status: int, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2)
            if last.status_code == status:
                return last.json()
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{path} never answered {status}; last: {last and (last.status_code, last.text)}")


def test_the_agent_reports_its_nats_connection_and_answers_while_alive(tmp_path):
    nats = Nats(tmp_path / "nats")
    nats.start()
    port = free_port()
    env = {
        **os.environ,
        "BRIGHTRUN_HOME": str(tmp_path / "home"),
        "BRIGHTRUN_NATS_URL": nats.url,
        **nats.login("trainer_agent"),
        # Read by every component's settings; the agent itself never opens the database.
        "BRIGHTRUN_DATABASE_URL": "postgresql+asyncpg://unused@127.0.0.1:1/unused",
        "BRIGHTRUN_S3_ENDPOINT": "http://127.0.0.1:1",
        "BRIGHTRUN_S3_ACCESS_KEY": "unused",
        "BRIGHTRUN_S3_SECRET_KEY": "unused",
        "BRIGHTRUN_INTERNAL_TOKEN_SECRET": "agent-test-internal-token-secret-0123456789",
        "BRIGHTRUN_DEFAULT_BASE_MODEL": "org/model",
        "BRIGHTRUN_AGENT_HEALTH_PORT": str(port),
        "BRIGHTRUN_AGENT_ID": "health-test",
    }
    agent = subprocess.Popen([sys.executable, "-m", "services.trainer_agent"], cwd=ROOT, env=env)
    try:
        assert _until(port, "/healthz", 200)["nats_connected"] is True
        nats.stop()
        assert _until(port, "/healthz", 503)["nats_connected"] is False
        assert _until(port, "/livez", 200) == {"alive": True}
        nats.start()
        assert _until(port, "/healthz", 200, timeout=60)["nats_connected"] is True
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(timeout=30) == 0
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
        nats.stop()
