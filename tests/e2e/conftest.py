import os

import pytest

from services.platform.launcher import Platform


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    """The embedded default (every component in its own process), for one test module."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIGHTRUN_")}
    with Platform(tmp_path_factory.mktemp("brightrun-home"), env, http_port=0) as running:
        yield running
