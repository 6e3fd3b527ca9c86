"""The process managers start real PostgreSQL, NATS JetStream and SeaweedFS,
serve clients, restart on their own state, and leave no process behind."""

from __future__ import annotations

import os
import signal
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from uuid import uuid4

import asyncpg
import nats
import pytest
from nats.js.api import StreamConfig

from services.common.components import ComponentError, Nats, ObjectStore, Postgres

pytestmark = pytest.mark.slow


def assert_gone(pgid: int) -> None:
    """Neither the server nor anything in its process group is left."""
    with pytest.raises(ProcessLookupError):
        os.killpg(pgid, 0)


def put(url: str, body: bytes) -> int:
    request = urllib.request.Request(url, data=body, method="PUT")
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:
            return reply.status
    except urllib.error.HTTPError as error:
        return error.code


async def test_postgres_serves_the_dsn_and_restarts_on_its_data(tmp_path: Path) -> None:
    pg = Postgres(tmp_path / "pg", fast=True)
    assert pg.dsn == f"postgresql+asyncpg://brightrun@127.0.0.1:{pg.port}/brightrun"
    for _ in range(2):  # the second start reuses the cluster, role and database
        with pg:
            pid = pg.pid
            assert pid is not None
            conn = await asyncpg.connect(pg.dsn.replace("+asyncpg", ""))
            try:
                assert await conn.fetchval("select 1") == 1
                assert await conn.fetchval("select current_user") == "brightrun"
            finally:
                await conn.close()
        assert_gone(pid)
        assert pg.pid is None


async def test_postgres_keeps_its_data_under_a_long_base_dir_and_names_it_on_every_process() -> None:
    # Longer than a unix socket's path may be: the server listens on TCP only, so nothing moves to /tmp.
    # A folder open to others, so that the postgres user reaches it when the tests run as root.
    with tempfile.TemporaryDirectory(prefix="brightrun-long-") as top:
        os.chmod(top, 0o755)
        base_dir = Path(top, "x" * 60, "y" * 60, "pg")
        base_dir.parent.mkdir(parents=True, mode=0o755)
        base_dir.parent.parent.chmod(0o755)
        with Postgres(base_dir, fast=True) as pg:
            assert pg.dir == base_dir and not base_dir.is_symlink()
            assert (base_dir / "data" / "PG_VERSION").is_file()
            command = Path(f"/proc/{pg.pid}/cmdline").read_bytes().decode()
            assert f"brightrun.home={base_dir}" in command
            conn = await asyncpg.connect(pg.asyncpg_dsn)
            assert await conn.fetchval("select 1") == 1
            # A connection's backend names the home in its process title too (what `ps` shows).
            backend = await conn.fetchval("select pg_backend_pid()")
            title = Path(f"/proc/{backend}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            assert title.startswith(f"postgres: ...{str(base_dir)[-60:]}: brightrun brightrun"), title
            await conn.close()


async def test_a_short_home_is_whole_in_every_backends_process_title() -> None:
    with tempfile.TemporaryDirectory(prefix="br-") as top:
        os.chmod(top, 0o755)
        base_dir = Path(top, "pg")
        with Postgres(base_dir, fast=True) as pg:
            conn = await asyncpg.connect(pg.asyncpg_dsn)
            backend = await conn.fetchval("select pg_backend_pid()")
            title = Path(f"/proc/{backend}/cmdline").read_bytes().decode()
            assert title.startswith(f"postgres: {base_dir}: brightrun brightrun"), title
            await conn.close()


async def test_postgres_stop_ends_backends_of_open_connections(tmp_path: Path) -> None:
    with Postgres(tmp_path / "pg", fast=True) as pg:
        pid = pg.pid
        assert pid is not None
        conn = await asyncpg.connect(pg.asyncpg_dsn)
    assert_gone(pid)
    conn.terminate()


async def test_nats_jetstream_publishes_and_acks(tmp_path: Path) -> None:
    with Nats(tmp_path / "nats") as server:
        pid = server.pid
        assert pid is not None
        nc = await nats.connect(server.url)
        try:
            js = nc.jetstream()
            stream, subject = f"s-{uuid4().hex}", f"t.{uuid4().hex}"
            await js.add_stream(StreamConfig(name=stream, subjects=[subject]))
            ack = await js.publish(subject, b"hello")
            assert (ack.stream, ack.seq) == (stream, 1)
            sub = await js.pull_subscribe(subject, durable="d")
            [msg] = await sub.fetch(1, timeout=5)
            assert msg.data == b"hello"
            await msg.ack_sync()
            await sub.unsubscribe()
        finally:
            await nc.close()
    assert_gone(pid)


def test_nats_refuses_a_taken_port(tmp_path: Path) -> None:
    with Nats(tmp_path / "a") as first:
        second = Nats(tmp_path / "b", port=first.port)
        with pytest.raises(ComponentError, match=f"port \\[{first.port}\\]"):
            second.start()
        assert second.pid is None


def test_a_server_that_exits_fails_start_with_its_log(tmp_path: Path) -> None:
    (tmp_path / "nats" / "jetstream").parent.mkdir()
    (tmp_path / "nats" / "jetstream").write_text("a file where the store directory goes")
    server = Nats(tmp_path / "nats")
    with pytest.raises(ComponentError, match="NATS exited") as raised:
        server.start()
    assert "storage directory is not a directory" in str(raised.value).split("tail of", 1)[1]
    assert server.pid is None


def test_object_store_enforces_signatures_and_cleans_up(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path / "s3", access_key="ak-test", secret_key="sk-test", buckets=("lora-models",))
    with store:
        pid = store.pid
        assert pid is not None
        s3 = store.client()
        s3.put_object(Bucket="lora-models", Key="a/b.txt", Body=b"weights")
        assert s3.get_object(Bucket="lora-models", Key="a/b.txt")["Body"].read() == b"weights"

        url = s3.generate_presigned_url("put_object", Params={"Bucket": "lora-models", "Key": "up.bin"}, ExpiresIn=60)
        assert put(url, b"uploaded") == 200
        assert s3.get_object(Bucket="lora-models", Key="up.bin")["Body"].read() == b"uploaded"
        assert put(url.replace("up.bin", "other.bin"), b"x") == 403
        signature_at = url.index("X-Amz-Signature=") + len("X-Amz-Signature=")
        flipped = "0" if url[signature_at] != "0" else "1"
        assert put(url[:signature_at] + flipped + url[signature_at + 1:], b"x") == 403

        expiring = s3.generate_presigned_url(
            "put_object", Params={"Bucket": "lora-models", "Key": "late.bin"}, ExpiresIn=1
        )
        time.sleep(2.1)
        assert put(expiring, b"x") == 403
    assert_gone(pid)
    ours = {f"-{store.port}.sock", f"-{store.port + 10000}.sock"}
    assert not [s for s in Path("/tmp").glob("seaweedfs-*.sock") if s.name.endswith(tuple(ours))]

    with store:  # restart on the old data: objects and buckets survive
        assert store.client().get_object(Bucket="lora-models", Key="up.bin")["Body"].read() == b"uploaded"


def test_stop_kills_a_server_that_ignores_the_stop_signal(tmp_path: Path) -> None:
    server = Nats(tmp_path / "nats", stop_timeout=0.5)
    server.start()
    pid = server.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)  # a frozen server cannot act on SIGTERM
    server.stop()
    assert_gone(pid)
