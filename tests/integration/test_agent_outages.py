"""The trainer agent's way out through outages, against servers of its own
that the tests stop and start: events wait in order while NATS is away and
all go out once it is back; a checkpoint goes up once the store is back, only
after the events sent before it, and only the newest of those waiting."""

from __future__ import annotations

import asyncio
import io
import json
import tarfile
import uuid

import pytest
from nats.js.api import DeliverPolicy

from services.common import events
from services.common.components import Nats, ObjectStore
from services.common.grants import grant
from services.common.nats_access import ADMIN
from services.common.storage import ObjectStorage, checkpoint_key
from services.trainer_agent.checkpoint import MANIFEST
from services.trainer_agent.checkpoint_store import CheckpointUploader
from services.trainer_agent.granted import GrantedStore
from services.trainer_agent.relay import EventRelay

pytestmark = pytest.mark.slow


def _metrics_event(job_id: str, step: int):
    event = events.new_event("trainer.metrics", producer="test", user_id="u", subject_id=job_id)
    event.event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{job_id}:{step}"))
    return event


async def _event_ids_in_stream(js, job_id: str) -> list[str]:
    sub = await js.subscribe("trainer.metrics", ordered_consumer=True, deliver_policy=DeliverPolicy.ALL)
    ids = []
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=1.0)
            except TimeoutError:
                return ids
            event = events.events_pb2.Event.FromString(msg.data)
            if event.subject_id == job_id:
                ids.append(event.event_id)
    finally:
        await sub.unsubscribe()


async def test_events_wait_in_order_through_a_nats_outage(tmp_path):
    server = Nats(tmp_path / "nats")
    server.start()
    try:
        nc, js = await events.connect(server.url_for(ADMIN), "relay-test")
        relay = EventRelay(js)
        relay.start()
        job_id = str(uuid.uuid4())
        sent = [_metrics_event(job_id, step) for step in range(1, 31)]
        relay.send(sent[0])
        assert await relay.wait_published(1, timeout=10)
        server.stop()
        marks = [relay.send(event) for event in sent[1:]]
        assert not await relay.wait_published(marks[-1], timeout=2.0)
        assert relay.waiting == 29
        server.start()
        assert await relay.wait_published(marks[-1], timeout=60)
        assert await relay.stop(timeout=1.0)
        # Each event once, in the order sent.
        assert await _event_ids_in_stream(js, job_id) == [event.event_id for event in sent]
        await nc.close()
    finally:
        server.stop()


def _checkpoint(root, step: int):
    directory = root / f"step-{step:08d}"
    directory.mkdir(parents=True)
    (directory / "adapter.bin").write_bytes(b"x" * step)
    (directory / MANIFEST).write_text(json.dumps({"step": step}))
    return directory


async def test_only_the_newest_checkpoint_goes_up_once_its_events_are_out_and_the_store_is_back(tmp_path):
    nats = Nats(tmp_path / "nats")
    store = ObjectStore(tmp_path / "s3", buckets=("models",))
    nats.start()
    store.start()
    try:
        nc, js = await events.connect(nats.url_for(ADMIN), "uploads-test")
        relay = EventRelay(js)
        relay.start()
        storage = ObjectStorage(store.endpoint_url, store.endpoint_url, store.access_key, store.secret_key, "us-east-1")
        granted = GrantedStore(grant(storage, 600, reads=[], upload=("models", "job/")))
        saved: list[int] = []
        uploads = CheckpointUploader(granted, checkpoint_key("job/"), relay,
                                     on_uploaded=lambda step, key: saved.append(step))
        nats.stop()
        relay.send(_metrics_event("job", 5))
        uploads.add(_checkpoint(tmp_path, 5), 5)
        relay.send(_metrics_event("job", 10))
        uploads.add(_checkpoint(tmp_path, 10), 10)
        # The store is up, but the metrics of those steps are not out: nothing may go up.
        await asyncio.sleep(2.0)
        assert saved == []
        store.stop()
        nats.start()
        assert await relay.wait_published(relay.mark, timeout=60)
        await asyncio.sleep(2.0)  # the store is away: the upload waits
        assert saved == []
        store.start()
        assert await uploads.finish(timeout=60)
        assert saved == [10]
        assert storage.list_keys("models", "job/checkpoints/") == [checkpoint_key("job/")]
        with tarfile.open(fileobj=io.BytesIO(storage.get_bytes("models", checkpoint_key("job/")))) as tar:
            assert sorted(tar.getnames()) == ["step-00000010/adapter.bin", f"step-00000010/{MANIFEST}"]
        await relay.stop(timeout=5)
        await nc.close()
    finally:
        store.stop()
        nats.stop()
