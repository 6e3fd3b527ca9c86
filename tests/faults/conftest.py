"""Fixtures of the fault-injection suite: the real embedded default
(PostgreSQL, NATS JetStream, SeaweedFS, the four services, a CPU trainer
agent, the gateway), started once per module, and a fresh user's API client.
Helpers to run and check jobs are in ``faultkit``.
"""

from __future__ import annotations

import httpx
import pytest

from faultkit import new_user_client, platform_env
from services.platform.launcher import Platform


@pytest.fixture(scope="module")
def platform(tmp_path_factory) -> Platform:
    """The embedded default, started for one test module and stopped after it."""
    with Platform(tmp_path_factory.mktemp("faults") / "home", platform_env(), http_port=0) as started:
        yield started


@pytest.fixture
def api(platform: Platform) -> httpx.Client:
    with new_user_client(platform) as client:
        yield client
