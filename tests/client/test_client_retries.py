"""Retries with backoff on 429/503 and the errors the client raises, against a real local HTTP server."""

from __future__ import annotations

import json
import time

import pytest

from brightrun_client import AsyncClient, BrightRunError, Client, RetryPolicy
from scripted import Answer, ok

DATASET = {"id": "d-1", "name": "reverse", "status": "ready"}
UNAVAILABLE = {"error": "Service unavailable", "details": "retry shortly", "code": "unavailable"}


def _after(failures: int, failure: Answer, success: Answer):
    """A script answering ``failure`` to the first ``failures`` requests, then ``success``."""
    count = {"n": 0}

    def respond(seen, handler):
        count["n"] += 1
        return failure if count["n"] <= failures else success

    return respond


def test_a_503_is_retried_after_the_retry_after_it_names(server):
    server.respond = _after(1, Answer(503, UNAVAILABLE, {"Retry-After": "1"}), ok({"dataset": DATASET}))
    with Client(server.url, "t", retry=RetryPolicy(backoff=0.01)) as client:
        started = time.monotonic()
        dataset = client.get_dataset("d-1")
        waited = time.monotonic() - started
    assert dataset.id == "d-1" and dataset.status == "ready"
    assert len(server.requests) == 2
    # Retry-After: 1 wins over the 0.01 s backoff.
    assert 0.9 <= waited < 5, waited
    assert server.requests[0].headers["authorization"] == "Bearer t"


def test_a_429_without_retry_after_backs_off_exponentially(server):
    server.respond = _after(3, Answer(429, {"error": "Too many requests"}), ok({"dataset": DATASET}))
    delays = []
    with Client(server.url, "t", retry=RetryPolicy(backoff=0.1), sleep=delays.append) as client:
        assert client.get_dataset("d-1").id == "d-1"
    assert len(server.requests) == 4
    for delay, base in zip(delays, (0.1, 0.2, 0.4), strict=True):
        assert base <= delay <= base * 1.1


def test_retries_stop_after_max_retries_with_the_last_answers_error(server):
    server.respond = lambda seen, handler: Answer(503, UNAVAILABLE, {"Retry-After": "7"})
    delays = []
    with Client(server.url, "t", retry=RetryPolicy(max_retries=2, max_delay=5), sleep=delays.append) as client:
        with pytest.raises(BrightRunError) as raised:
            client.list_jobs()
    assert len(server.requests) == 3
    assert delays == [5, 5]  # Retry-After capped at max_delay
    error = raised.value
    assert (error.status, error.error, error.details, error.code, error.retry_after) == (
        503, "Service unavailable", "retry shortly", "unavailable", 7.0)


def test_other_errors_are_raised_at_once_and_read_tolerantly(server):
    details = {"hyperparameters.rank": ["Must be at least 4"]}
    server.respond = lambda seen, handler: Answer(400, {"error": "Validation error", "details": details})
    with Client(server.url, "t", sleep=lambda d: pytest.fail("a 400 must not be retried")) as client:
        with pytest.raises(BrightRunError) as raised:
            client.estimate_job("d-1", "A100x2", {"rank": 2})
    assert len(server.requests) == 1
    assert (raised.value.status, raised.value.error, raised.value.details, raised.value.code) == (
        400, "Validation error", details, None)
    assert server.requests[0].headers["content-type"] == "application/json"


def test_a_retried_job_creation_sends_the_same_idempotency_key(server):
    job = {"id": "j-1", "status": "queued"}
    server.respond = _after(1, Answer(503, UNAVAILABLE, {"Retry-After": "0"}),
                            Answer(201, {"success": True, "data": {"job": job}, "warnings": ["no agent seen"]}))
    with Client(server.url, "t") as client:
        created = client.create_job("d-1", "balanced", "H100x8", {"epochs": 1})
    assert created.job.id == "j-1" and created.warnings == ["no agent seen"]
    first, second = server.requests
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"]
    assert first.body == second.body
    assert json.loads(first.body) == {"dataset_id": "d-1", "preset_id": "balanced", "hyperparameters": {"epochs": 1},
                                      "gpu_config": {"type": "H100", "count": 8}}


async def test_the_async_client_retries_the_same_way(server):
    server.respond = _after(2, Answer(503, UNAVAILABLE), ok({"dataset": DATASET}))
    delays = []

    async def sleep(delay):
        delays.append(delay)

    async with AsyncClient(server.url, "t", retry=RetryPolicy(backoff=0.2), sleep=sleep) as client:
        dataset = await client.get_dataset("d-1")
    assert dataset.name == "reverse"
    assert len(server.requests) == 3 and len(delays) == 2 and 0.4 <= delays[1] <= 0.44
