import os
import uuid

import httpx
import pytest

from services.platform.launcher import Platform


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    """The embedded default (every component in its own process), for one test module."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIGHTRUN_")}
    with Platform(tmp_path_factory.mktemp("brightrun-home"), env, http_port=0) as running:
        yield running


def _client(platform: Platform) -> httpx.Client:
    """An HTTP client of the platform's gateway signed in as a new user."""
    token = platform.token(str(uuid.uuid4()))
    return httpx.Client(base_url=platform.gateway_url, headers={"Authorization": f"Bearer {token}"}, timeout=60)


@pytest.fixture(scope="module")
def alice(platform):
    with _client(platform) as client:
        yield client


@pytest.fixture(scope="module")
def bob(platform):
    with _client(platform) as client:
        yield client
