"""The embedded default starts every part and leaves no process behind when stopped."""

from __future__ import annotations

import os
import urllib.request

import pytest

from services.platform.launcher import SERVICES, Platform

pytestmark = pytest.mark.slow


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is gone as far as we care.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split()[2] != "Z"


def test_stop_leaves_no_process_behind(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIGHTRUN_")}
    platform = Platform(tmp_path / "home", env, http_port=0)
    platform.start()
    try:
        with urllib.request.urlopen(platform.gateway_url + "/healthz", timeout=5) as reply:
            assert reply.status == 200
        pids = platform.processes()
        assert set(pids) == {"postgres", "nats", "objectstore", *SERVICES, "trainer_agent", "gateway"}
        assert all(_alive(pid) for pid in pids.values())
    finally:
        platform.stop()
    assert not [name for name, pid in pids.items() if _alive(pid)]
