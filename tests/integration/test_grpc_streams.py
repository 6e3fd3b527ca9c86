"""A server stream (WatchJob's shape) on a real grpc.aio server, through services.common.grpc's wiring:
a caller that goes away while the stream waits for their window ends the call in its own context, at
once, recorded as CANCELLED, and nothing is logged as an error."""

from __future__ import annotations

import asyncio
import gc
import logging
import uuid

from brightrun.job.v1 import job_pb2, job_pb2_grpc

from services.common.grpc import as_user, channel, create_server, stream_rpc


class Watching(job_pb2_grpc.JobServiceServicer):
    """Sends the job, then updates faster than the watcher reads them: the handler waits at a ``yield``
    while grpc waits for the watcher's window, as WatchJob does when a burst meets a slow watcher."""

    def __init__(self):
        self.closed = asyncio.Event()

    @stream_rpc
    async def WatchJob(self, request, context):
        try:
            yield job_pb2.WatchJobResponse(job=job_pb2.Job(id=request.job_id))
            while True:
                yield job_pb2.WatchJobResponse(job=job_pb2.Job(id=request.job_id, error_message="x" * 256_000))
        finally:
            self.closed.set()  # where WatchJob leaves its job's live feed


async def test_a_watcher_that_goes_away_ends_the_stream_in_its_own_context_without_an_error(settings, caplog):
    watching = Watching()
    server, port, _ = create_server(
        "127.0.0.1:0", [lambda s: job_pb2_grpc.add_JobServiceServicer_to_server(watching, s)], [])
    await server.start()
    try:
        with caplog.at_level(logging.INFO):
            async with channel(f"127.0.0.1:{port}") as ch:
                for _ in range(20):  # each a watcher that reads the snapshot and leaves
                    watching.closed.clear()
                    job_id = str(uuid.uuid4())
                    call = job_pb2_grpc.JobServiceStub(ch).WatchJob(
                        job_pb2.WatchJobRequest(job_id=job_id), metadata=as_user(str(uuid.uuid4())))
                    assert (await call.read()).job.id == job_id
                    await asyncio.sleep(0.05)  # the server fills the window and waits to write more
                    call.cancel()
                    # Its handler's cleanup runs when it leaves, not when the garbage collector finds it.
                    await asyncio.wait_for(watching.closed.wait(), 5.0)
            gc.collect()
            await asyncio.sleep(0.5)  # what a collected stream would close, in a task of its own
    finally:
        await server.stop(None)
        gc.collect()  # anything left logs here, not under a later test
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []
    answered = [r.getMessage() for r in caplog.records if "JobService/WatchJob" in r.getMessage()]
    assert len(answered) == 20 and all(" CANCELLED " in line for line in answered), answered
