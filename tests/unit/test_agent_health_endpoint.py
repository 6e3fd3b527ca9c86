"""The trainer agent's health endpoint: readiness follows the NATS connection,
liveness the event loop's heartbeat, and a bad port setting stops the agent
with the variable's name."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from services.trainer_agent.health import PORT_VARIABLE, AgentHealth, health_port


def test_the_port_is_optional_and_checked():
    assert health_port({}) is None
    assert health_port({PORT_VARIABLE: "8081"}) == 8081
    for bad in ("http", "0", "70000", "-1"):
        with pytest.raises(SystemExit, match=PORT_VARIABLE):
            health_port({PORT_VARIABLE: bad})


async def test_readiness_follows_nats_and_liveness_the_loop_answering():
    connected = True
    health = AgentHealth(lambda: connected)
    port = await health.start("127.0.0.1", 0)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=5) as client:
            ready = await client.get("/healthz")
            assert ready.status_code == 200 and ready.json() == {"nats_connected": True}

            connected = False
            not_ready = await client.get("/healthz")
            assert not_ready.status_code == 503 and not_ready.json() == {"nats_connected": False}
            # An agent cut off from NATS rides the outage out: it is not restarted.
            assert (await client.get("/livez")).status_code == 200

            assert (await client.get("/metrics")).status_code == 404
            assert (await client.post("/healthz")).status_code == 405

        # A blocked event loop answers no probe within its timeout: the kubelet restarts the pod.
        probe = asyncio.get_running_loop().run_in_executor(None, lambda: httpx.get(f"{url}/livez", timeout=0.5))
        time.sleep(1.5)
        with pytest.raises(httpx.TimeoutException):
            await probe
    finally:
        await health.stop()
