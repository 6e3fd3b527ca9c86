"""The start-up checks' own rules: one launcher per home, endpoints read from
the settings' URLs, and passwords kept off the terminal."""

from __future__ import annotations

import os
import socket

import pytest

from services.common.startup import HomeLock, StartupError, require_free_port, require_reachable


def test_a_home_takes_one_lock_at_a_time_and_names_its_holder(tmp_path):
    first, second = HomeLock(tmp_path), HomeLock(tmp_path)
    first.acquire()
    with pytest.raises(StartupError, match=f"BRIGHTRUN_HOME={tmp_path} \\(launcher pid {os.getpid()}\\)"):
        second.acquire()
    first.release()
    second.acquire()
    second.release()


def test_a_listener_on_the_port_is_named_with_its_setting():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(StartupError, match=f"port {port} on 127.0.0.1 \\(BRIGHTRUN_X_PORT\\) is already in use"):
            require_free_port(port, "BRIGHTRUN_X_PORT")
    require_free_port(port, "BRIGHTRUN_X_PORT")


def test_a_listening_endpoint_passes_and_a_closed_one_is_named_without_its_password():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        require_reachable([("BRIGHTRUN_NATS_URL", f"nats://127.0.0.1:{port},nats://127.0.0.1:1")], timeout=1)
    url = f"postgresql+asyncpg://user:hunter2@127.0.0.1:{port}/db"
    with pytest.raises(StartupError) as refused:
        require_reachable([("BRIGHTRUN_DATABASE_URL", url)], timeout=0.5)
    assert str(refused.value).startswith(f"BRIGHTRUN_DATABASE_URL=postgresql+asyncpg://user:***@127.0.0.1:{port}/db is")
    assert "hunter2" not in str(refused.value)


def test_an_endpoint_without_host_or_port_is_named():
    with pytest.raises(StartupError, match="BRIGHTRUN_S3_ENDPOINT=s3 names no host and port"):
        require_reachable([("BRIGHTRUN_S3_ENDPOINT", "s3")], timeout=0.1)
