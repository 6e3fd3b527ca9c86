"""Checkpoints in the object store, so that another agent can resume a job.

The newest checkpoint directory ``step-NNNNNNNN`` goes up as one tar archive
at the job's fixed key (``storage.checkpoint_key``), replacing the one before
it in a single write: the store holds a whole checkpoint or the previous one,
never part of one, so an agent that dies mid-upload leaves nothing anyone
would resume from. A fixed key is also one the assignment's grant can name
when the job is queued. The downloaded copy is checked again (sizes and
sha256) by ``checkpoint.read_checkpoint`` when the recipe loads it.
"""

from __future__ import annotations

import asyncio
import logging
import tarfile
from collections.abc import Callable
from pathlib import Path

from services.common.cancelling import cancel_and_wait
from services.common.storage import ObjectMissing
from services.trainer_agent.checkpoint_format import STEP_DIR
from services.trainer_agent.granted import GrantedStore
from services.trainer_agent.relay import EventRelay, backoff

log = logging.getLogger(__name__)


def upload_checkpoint(storage: GrantedStore, directory: Path, key: str) -> str:
    """Upload a complete local checkpoint as the archive at ``key``; returns ``key``."""
    archive = directory.with_name(f".{directory.name}.tar")
    try:
        with tarfile.open(archive, "w") as tar:
            for path in sorted(p for p in directory.iterdir() if p.is_file()):
                tar.add(path, arcname=f"{directory.name}/{path.name}")
        storage.upload_file(archive, key)
    finally:
        archive.unlink(missing_ok=True)
    return key


def download_latest_checkpoint(storage: GrantedStore, bucket: str, key: str, root: Path) -> Path | None:
    """Unpack the checkpoint archive at ``key`` into ``root``; its directory, or None when there is none."""
    archive = root / ".latest.tar"
    try:
        storage.download_file(bucket, key, archive)
    except ObjectMissing:
        return None
    try:
        with tarfile.open(archive) as tar:
            names = {member.name.split("/", 1)[0] for member in tar.getmembers()}
            if len(names) != 1 or not STEP_DIR.fullmatch(next(iter(names))):
                raise ValueError(f"the checkpoint archive s3://{bucket}/{key} holds {sorted(names)}, "
                                 "not one step-NNNNNNNN directory")
            tar.extractall(root, filter="data")  # regular files under root only
    finally:
        archive.unlink(missing_ok=True)
    return root / names.pop()


class CheckpointUploader:
    """Uploads an attempt's checkpoints in the background while it trains on,
    retrying through object-store outages; when several wait, only the newest
    goes up (resuming needs no other).

    A checkpoint goes up only once every event sent before it (its steps'
    metrics) is published: a resumed attempt starts after it, so an event
    still waiting would be a step never reported.
    """

    def __init__(
        self, storage: GrantedStore, key: str, relay: EventRelay, on_uploaded: Callable[[int, str], None],
    ):
        self._storage = storage
        self._key = key
        self._relay = relay
        self._on_uploaded = on_uploaded
        self._pending: tuple[Path, int, int] | None = None  # directory, step, relay mark
        self._idle = asyncio.Event()  # nothing waits to go up
        self._idle.set()
        self._work = asyncio.Event()  # the opposite, for the uploading task
        self._task = asyncio.create_task(self._run(), name=f"checkpoint-uploads-{key}")

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
        await cancel_and_wait(self._task)

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
                key = await asyncio.to_thread(upload_checkpoint, self._storage, directory, self._key)
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
            self._on_uploaded(step, key)

