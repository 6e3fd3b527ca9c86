"""Checkpoints in the object store, so that another agent can resume a job.

A checkpoint directory ``step-NNNNNNNN`` is uploaded file by file with its
``manifest.json`` last: a checkpoint is visible (and resumable) only once its
manifest is there, so an agent that dies mid-upload leaves nothing anyone
would resume from. The downloaded copy is checked again (sizes and sha256)
by ``checkpoint.read_checkpoint`` when the recipe loads it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from services.common.storage import ObjectStorage
from services.trainer_agent.checkpoint_format import MANIFEST
from services.trainer_agent.relay import EventRelay, backoff

log = logging.getLogger(__name__)


def upload_checkpoint(storage: ObjectStorage, directory: Path, bucket: str, prefix: str) -> str:
    """Upload a complete local checkpoint under ``prefix``; returns its key prefix."""
    key_prefix = f"{prefix}{directory.name}/"
    files = sorted(p for p in directory.iterdir() if p.is_file() and p.name != MANIFEST)
    for path in files:
        storage.upload_file(path, bucket, key_prefix + path.name)
    storage.upload_file(directory / MANIFEST, bucket, key_prefix + MANIFEST)
    return key_prefix


def download_latest_checkpoint(storage: ObjectStorage, bucket: str, prefix: str, root: Path) -> Path | None:
    """Download the newest checkpoint under ``prefix`` that has a manifest into ``root``; None when there is none."""
    complete = sorted(
        key[len(prefix) :].split("/", 1)[0]
        for key in storage.list_keys(bucket, prefix)
        if key.endswith("/" + MANIFEST)
    )
    if not complete:
        return None
    name = complete[-1]
    target = root / name
    for key in storage.list_keys(bucket, f"{prefix}{name}/"):
        storage.download_file(bucket, key, target / key.rsplit("/", 1)[1])
    return target


class CheckpointUploader:
    """Uploads an attempt's checkpoints in the background while it trains on,
    retrying through object-store outages; when several wait, only the newest
    goes up (resuming needs no other).

    A checkpoint goes up only once every event sent before it (its steps'
    metrics) is published: a resumed attempt starts after it, so an event
    still waiting would be a step never reported.
    """

    def __init__(
        self, storage: ObjectStorage, bucket: str, prefix: str, relay: EventRelay,
        on_uploaded: Callable[[int, str], None],
    ):
        self._storage = storage
        self._bucket = bucket
        self._prefix = prefix
        self._relay = relay
        self._on_uploaded = on_uploaded
        self._pending: tuple[Path, int, int] | None = None  # directory, step, relay mark
        self._idle = asyncio.Event()  # nothing waits to go up
        self._idle.set()
        self._work = asyncio.Event()  # the opposite, for the uploading task
        self._task = asyncio.create_task(self._run(), name=f"checkpoint-uploads-{prefix}")

    def add(self, directory: Path, step: int) -> None:
        """Upload this checkpoint next, in place of any older one still waiting."""
        self._pending = (directory, step, self._relay.mark)
        self._idle.clear()
        self._work.set()

    async def finish(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the newest checkpoint to be up, then
        stop; False when it is still waiting."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            await self.abandon()

    async def abandon(self) -> None:
        """Stop now, uploading nothing more."""
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        tries = 0
        while True:
            await self._work.wait()
            pending = self._pending
            assert pending is not None
            directory, step, mark = pending
            await self._relay.wait_published(mark)
            if self._pending is not pending:  # a newer one came meanwhile: it makes this one useless
                continue
            try:
                prefix = await asyncio.to_thread(upload_checkpoint, self._storage, directory, self._bucket, self._prefix)
            except Exception as exc:
                tries += 1
                if tries == 1:
                    log.warning("checkpoint of step %d not uploaded (%s); retrying", step, exc)
                await asyncio.sleep(backoff(tries))
                continue
            tries = 0
            if self._pending == pending:
                self._pending = None
                self._work.clear()
                self._idle.set()
            self._on_uploaded(step, prefix)

