"""The job event stream resumed after a dropped connection, and streamed uploads, against a real local server."""

from __future__ import annotations

import json

import pytest

from brightrun_client import AsyncClient, BrightRunError, Client, Job, MetricPoint, RetryPolicy
from scripted import Answer, metric_frame, ok, status_frame, write_events

FAST = RetryPolicy(max_retries=3, backoff=0.01)


def _drop_after_step_two(seen, handler):
    """First connection: two points, then the connection breaks. Next: resumes after Last-Event-ID."""
    if "last-event-id" not in seen.headers:
        write_events(handler, [status_frame("running"), metric_frame(1, 2.0), metric_frame(2, 1.5)], complete=False)
    else:
        after = int(seen.headers["last-event-id"])
        # The gateway resends the job's status; a point the client already has must not come out twice.
        frames = [status_frame("running", after), metric_frame(2, 1.5), metric_frame(3, 1.0),
                  status_frame("completed", 3)]
        write_events(handler, frames, complete=True)


def _steps_and_statuses(events):
    return ([e.step for e in events if isinstance(e, MetricPoint)],
            [e.status for e in events if isinstance(e, Job)])


def test_job_events_resume_after_the_last_step_when_the_connection_drops(server):
    server.respond = _drop_after_step_two
    with Client(server.url, "t", retry=FAST) as client:
        events = list(client.job_events("job-1"))
    steps, statuses = _steps_and_statuses(events)
    assert steps == [1, 2, 3]
    assert statuses == ["running", "running", "completed"]
    assert [r.headers.get("last-event-id") for r in server.requests] == [None, "2"]
    assert all(r.path == "/api/jobs/job-1/events" for r in server.requests)


async def test_the_async_event_stream_resumes_too(server):
    server.respond = _drop_after_step_two
    async with AsyncClient(server.url, "t", retry=FAST) as client:
        events = [e async for e in client.job_events("job-1")]
    assert _steps_and_statuses(events)[0] == [1, 2, 3]
    assert server.requests[1].headers["last-event-id"] == "2"


def test_a_stream_that_keeps_dropping_without_progress_is_given_up(server):
    server.respond = lambda seen, handler: write_events(handler, [status_frame("running")], complete=False)
    with Client(server.url, "t", retry=FAST) as client:
        with pytest.raises(BrightRunError, match="dropped 3 times"):
            list(client.job_events("job-1"))
    assert len(server.requests) == 4


def _error_frame(error: str) -> str:
    return f"event: error\ndata: {json.dumps({'error': error, 'details': None})}\n\n"


def test_a_stream_ended_by_an_error_frame_is_reopened_after_the_last_step(server):
    def respond(seen, handler):
        if "last-event-id" not in seen.headers:
            write_events(handler, [metric_frame(1), _error_frame("Service unavailable")], complete=True)
        else:
            write_events(handler, [metric_frame(2), status_frame("completed", 2)], complete=True)

    server.respond = respond
    with Client(server.url, "t", retry=FAST) as client:
        assert _steps_and_statuses(list(client.job_events("job-1"))) == ([1, 2], ["completed"])
    assert server.requests[1].headers["last-event-id"] == "1"


def test_an_error_frame_that_persists_is_raised_and_an_unknown_job_at_once(server):
    server.respond = lambda seen, handler: write_events(handler, [_error_frame("Job not found")], complete=True)
    with Client(server.url, "t", retry=FAST) as client:
        with pytest.raises(BrightRunError, match="Job not found") as raised:
            list(client.job_events("job-1"))
        assert raised.value.status is None and len(server.requests) == 4
        server.respond = lambda seen, handler: Answer(404, {"error": "Not found", "details": "GET /api/jobs/x"})
        with pytest.raises(BrightRunError) as raised:
            list(client.job_events("x"))
    assert raised.value.status == 404 and len(server.requests) == 5


def test_an_upload_is_streamed_to_the_presigned_url_with_its_length_and_progress(server, tmp_path):
    content = b"".join(json.dumps({"n": i}).encode() + b"\n" for i in range(2000))
    path = tmp_path / "data.jsonl"
    path.write_bytes(content)

    def respond(seen, handler):
        if seen.method == "POST" and seen.path == "/api/datasets":
            return Answer(201, {"success": True, "data": {"dataset": {"id": "d-1", "status": "uploading"},
                                                          "uploadUrl": f"{server.url}/bucket/key?X-Amz-Signature=s"}})
        if seen.method == "PUT":
            return Answer(200)
        return ok({"dataset": {"id": "d-1", "status": "validating"}})

    server.respond = respond
    progress = []
    with Client(server.url, "secret-token") as client:
        ticket = client.create_dataset("data", path.name, path.stat().st_size)
        client.upload_file(ticket.upload_url, path, lambda done, total: progress.append((done, total)),
                           chunk_size=4096)
        confirmed = client.confirm_upload(ticket.dataset.id)
    create, put, confirm = server.requests
    assert json.loads(create.body) == {"name": "data", "file_name": "data.jsonl", "file_size": len(content)}
    assert (put.path, put.query) == ("/bucket/key", {"X-Amz-Signature": "s"})
    assert put.body == content
    assert put.headers["content-length"] == str(len(content)) and "transfer-encoding" not in put.headers
    # The presigned URL carries its own signature: the bearer token must not go to the object store.
    assert "authorization" not in put.headers
    assert len(progress) == -(-len(content) // 4096)
    assert [done for done, _ in progress] == sorted(done for done, _ in progress)
    assert progress[-1] == (len(content), len(content))
    assert (confirm.path, confirmed.status) == ("/api/datasets/d-1/confirm", "validating")


async def test_the_async_client_streams_an_upload_too(server, tmp_path):
    content = bytes(range(256)) * 100
    path = tmp_path / "data.jsonl"
    path.write_bytes(content)
    server.respond = lambda seen, handler: Answer(200)
    progress = []
    async with AsyncClient(server.url, "secret-token") as client:
        await client.upload_file(f"{server.url}/bucket/key", path, lambda done, total: progress.append(done),
                                 chunk_size=1000)
    (put,) = server.requests
    assert put.body == content and put.headers["content-length"] == str(len(content))
    assert "authorization" not in put.headers
    assert progress == list(range(1000, len(content), 1000)) + [len(content)]
