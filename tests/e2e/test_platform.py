"""The embedded default starts every part, each child with its own environment and each service with its
bucket, and leaves no process behind when stopped."""

from __future__ import annotations

import os
import re
import urllib.request

import pytest

from services.common.config import SERVICE_SECRETS
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


def _environ(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/environ", "rb") as raw:
        entries = raw.read().decode().split("\0")
    return dict(entry.split("=", 1) for entry in entries if entry)


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
        pg = platform.component("postgres")
        for name in SERVICES:
            env = _environ(pids[name])
            assert env["BRIGHTRUN_DATABASE_URL"] == pg.service_dsn(name)  # its own role, under row-level security
            assert (env["BRIGHTRUN_NATS_USER"], env["BRIGHTRUN_NATS_PASSWORD"]) == platform.nats_login(name)
        agent = _environ(pids["trainer_agent"])
        assert (agent["BRIGHTRUN_NATS_USER"], agent["BRIGHTRUN_NATS_PASSWORD"]) == platform.nats_login("trainer_agent")
        assert not set(agent) & set(SERVICE_SECRETS)
        assert len({_environ(pid)["BRIGHTRUN_METRICS_PORT"] for name, pid in pids.items() if name not in
                    ("postgres", "nats", "objectstore")}) == len(SERVICES) + 2
        # Each service and the gateway froze what its start-up built (services.common.process.settled).
        for name in (*SERVICES, "gateway"):
            frozen = re.search(r"(\d+) start-up objects frozen", (platform.home / "logs" / f"{name}.log").read_text())
            assert frozen and int(frozen[1]) > 10_000, name
        # The launcher makes no bucket: dataset_svc and artifact_svc made theirs.
        listed = platform.component("objectstore").client().list_buckets()["Buckets"]
        assert {bucket["Name"] for bucket in listed} == {"lora-datasets", "lora-models"}
    finally:
        platform.stop()
    assert not [name for name, pid in pids.items() if _alive(pid)]
