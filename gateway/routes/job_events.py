"""``GET /api/jobs/{id}/events``: JobService.WatchJob as Server-Sent Events.

``event: status`` carries the job, ``event: metric`` a metric point whose
``id:`` is its step, so a reconnecting browser's ``Last-Event-ID`` resumes
after the last point it saw, and ``event: completed`` ``{job_id, artifact_id}``
says where the trained adapter is, once it is stored. The stream ends when the watch ends; the gRPC
call is cancelled when the client goes away.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import grpc
from starlette.requests import Request
from starlette.responses import StreamingResponse

from brightrun.job.v1 import job_pb2
from gateway.convert import message_to_json
from gateway.routes.jobs import job_json
from gateway.errors import from_rpc_error
from gateway.declare import Endpoint, Param
from gateway.http import INT64_MAX, Caller, caller, int_param, parse_int, path_id

# A comment line this often keeps proxies and client read timeouts from closing a quiet stream.
KEEPALIVE_S = 15.0
# How long to wait for the watch's first answer (the job, from one read) before the stream starts, so
# that an unknown job is a plain 404 and an outage a 503, not a stream that ends in an error. A healthy
# service answers at once; the bound covers the channel's retries of UNAVAILABLE (services.common.grpc),
# which take seconds on a loaded machine.
_FIRST_ANSWER_S = 10.0


def _resume_after(request: Request) -> int:
    """The step to resume after; raises HttpError 400 naming Last-Event-ID or after_step when not a step."""
    last_id = request.headers.get("last-event-id", "")
    if last_id:
        # Every id this stream sends is a step, so anything else did not come from it.
        return parse_int(last_id, "Last-Event-ID", 0, INT64_MAX)
    return int_param(request, "after_step", 0, minimum=0)


def format_event(update: job_pb2.WatchJobResponse, api: Caller) -> str:
    """One WatchJobResponse as SSE frames, shown to ``api`` as its answers are."""
    if update.WhichOneof("update") == "metric_point":
        point = update.metric_point
        return f"event: metric\nid: {point.step}\ndata: {json.dumps(message_to_json(point))}\n\n"
    job = api.shown(job_json(update.job))
    frame = f"event: status\ndata: {json.dumps(job)}\n\n"
    if job["status"] == "completed" and job["artifact_id"]:
        frame += f"event: completed\ndata: {json.dumps({'job_id': job['id'], 'artifact_id': job['artifact_id']})}\n\n"
    return frame


async def job_events(request: Request):
    api = caller(request)
    message = job_pb2.WatchJobRequest(job_id=path_id(request), after_step=_resume_after(request))
    call = api.stubs.jobs.WatchJob(message, metadata=api.metadata)
    pending = asyncio.ensure_future(call.read())
    await asyncio.wait({pending}, timeout=_FIRST_ANSWER_S)
    if pending.done() and pending.exception() is not None:
        call.cancel()
        raise pending.exception()
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(_frames(call, pending, api), media_type="text/event-stream", headers=headers)


async def _frames(call, pending: asyncio.Future, api: Caller) -> AsyncIterator[str]:
    # Reads run as tasks so that waiting for one can time out into a keepalive
    # without cancelling the read (which would cancel the whole call).
    try:
        while True:
            done, _ = await asyncio.wait({pending}, timeout=KEEPALIVE_S)
            if not done:
                yield ": keepalive\n\n"
                continue
            try:
                update = pending.result()
            except grpc.aio.AioRpcError as exc:
                yield f"event: error\ndata: {json.dumps(from_rpc_error(exc).body())}\n\n"
                return
            if update is grpc.aio.EOF:
                return
            yield format_event(update, api)
            pending = asyncio.ensure_future(call.read())
    finally:
        # Runs when the client disconnects too (the response task is cancelled).
        pending.cancel()
        call.cancel()


ENDPOINTS = (
    Endpoint(
        "GET", "/api/jobs/{id}/events", job_events, "A job's status and metric points as Server-Sent Events",
        {"type": "string"}, media_type="text/event-stream",
        params=(
            Param("after_step", {"type": "integer", "minimum": 0, "default": 0}, "Replay metric points after this step"),
            Param("Last-Event-ID", {"type": "string"}, "Sent by a reconnecting EventSource: resume after it",
                  where="header"),
        ),
        description="event: status carries the job, event: metric a metric point (id: its step), event: "
        "completed {job_id, artifact_id} where the adapter is once stored; the stream ends after that, or when "
        "the job fails or is cancelled.",
    ),
)
