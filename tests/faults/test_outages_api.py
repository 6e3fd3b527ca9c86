"""The public API on the real embedded platform under a database outage and
hostile input (issue 14, cases 5, 11 and 12).

PostgreSQL down is a 503 with ``Retry-After`` on every route that needs it, and
once it is back the same calls answer as before without any process restarted.
Hostile requests are 4xx with the spec's ``{error, details}`` body, never a 5xx.
An ``Idempotency-Key`` reused with another body is a 422; with the same body it
answers with the first job.
"""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from faultkit import HYPERPARAMETERS, ready_dataset
from services.platform.journey import wait_for

MISSING = str(uuid.uuid4())
# One route of each service that reads or writes the database, and one that
# needs two services (job_svc asks dataset_svc for the dataset).
DATABASE_ROUTES = [
    ("GET", "/api/datasets", None),
    ("GET", f"/api/datasets/{MISSING}", None),
    ("POST", "/api/datasets", {"name": "chats", "file_name": "chats.jsonl", "file_size": 100}),
    ("GET", "/api/jobs", None),
    ("GET", f"/api/jobs/{MISSING}/metrics", None),
    ("GET", f"/api/jobs/{MISSING}/events", None),
    ("POST", "/api/jobs/estimate", {
        "dataset_id": MISSING, "gpu_config": {"type": "CPU", "count": 1}, "hyperparameters": HYPERPARAMETERS,
    }),
    ("GET", "/api/models", None),
    ("GET", "/api/costs", None),
    ("GET", "/api/notifications", None),
]


def _answers(api: httpx.Client) -> dict[str, httpx.Response]:
    return {f"{method} {path}": api.request(method, path, json=body) for method, path, body in DATABASE_ROUTES}


def _children(platform) -> dict[str, int]:
    # The platform's components (PostgreSQL itself) get new pids when restarted; its services must not.
    return {name: pid for name, pid in platform.processes().items() if name not in ("postgres", "nats", "objectstore")}


def test_a_database_outage_is_503_with_retry_after_and_the_services_reconnect(platform, api):
    before = {route: reply.status_code for route, reply in _answers(api).items()}
    assert set(before.values()) <= {200, 201, 404}, before
    processes = _children(platform)

    postgres = platform.component("postgres")
    postgres.stop()
    try:
        # Twice: the first call finds the pooled connections dead, the second cannot connect at all.
        for _ in range(2):
            for route, reply in _answers(api).items():
                assert reply.status_code == 503, (route, reply.status_code, reply.text)
                assert int(reply.headers["Retry-After"]) > 0, route
                assert set(reply.json()) == {"success", "error", "details", "code"}, route
        # What needs no database keeps answering.
        assert api.get("/api/jobs/presets").status_code == 200
    finally:
        postgres.start()

    wait_for(lambda: api.get("/api/datasets"), lambda r: r.status_code == 200, 60, "the API after PostgreSQL restarted")
    after = {route: reply.status_code for route, reply in _answers(api).items()}
    assert after == before
    assert _children(platform) == processes, "a service was restarted instead of reconnecting"


def _chunks(size: int, chunk: int = 1 << 16):
    # A generator body goes out chunked, without a Content-Length.
    for _ in range(size // chunk):
        yield b" " * chunk


DEEP = b"[" * 5000 + b"]" * 5000
DATASET = {"name": "chats", "file_name": "chats.jsonl", "file_size": 100}
JOB = {"dataset_id": MISSING, "preset_id": "custom", "gpu_config": {"type": "CPU", "count": 1},
       "hyperparameters": HYPERPARAMETERS}
JSON_TYPE = {"Content-Type": "application/json"}
# (what, method, path, request keyword arguments, expected status, what the details must mention)
HOSTILE = [
    ("5,000-deep JSON", "POST", "/api/jobs", {"content": DEEP, "headers": JSON_TYPE}, 400, "nests"),
    ("5,000-deep JSON in a field", "POST", "/api/datasets", {"content": b'{"name": ' + DEEP + b"}", "headers": JSON_TYPE},
     400, "nests"),
    ("a 5,000-digit number", "POST", "/api/datasets",
     {"content": b'{"name": "n", "file_name": "f.jsonl", "file_size": ' + b"9" * 5000 + b"}",
      "headers": JSON_TYPE}, 400, "digits"),
    ("NaN", "POST", "/api/jobs/estimate", {"content": b'{"hyperparameters": {"learning_rate": NaN}}', "headers": JSON_TYPE},
     400, "NaN"),
    ("not JSON", "POST", "/api/jobs", {"content": b"dataset_id=1&preset_id=custom", "headers": JSON_TYPE}, 400,
     "not valid JSON"),
    ("a form body", "POST", "/api/jobs",
     {"content": b"dataset_id=1", "headers": {"Content-Type": "application/x-www-form-urlencoded"}}, 415,
     "Content-Type"),
    ("an unknown field", "POST", "/api/jobs",
     {"json": {**JOB, "hyperparameters": {**HYPERPARAMETERS, "learning_rat": 0.1}}}, 400,
     "hyperparameters.learning_rat"),
    ("an unknown query parameter", "GET", "/api/jobs?pge=2", {}, 400, "pge"),
    ("a path id that is no UUID", "GET", "/api/jobs/not-a-uuid", {}, 400, "UUID"),
    ("a JSON array", "POST", "/api/jobs", {"json": [JOB]}, 400, "JSON object"),
    ("after_step beyond int64", "GET", f"/api/jobs/{MISSING}/metrics?after_step=99999999999999999999", {}, 400,
     "after_step"),
    ("a 5,000-digit after_step", "GET", f"/api/jobs/{MISSING}/metrics?after_step={'9' * 5000}", {}, 400,
     "after_step"),
    ("a huge Last-Event-ID", "GET", f"/api/jobs/{MISSING}/events", {"headers": {"Last-Event-ID": "9" * 5000}}, 400,
     "Last-Event-ID"),
    ("a Last-Event-ID that is no step", "GET", f"/api/jobs/{MISSING}/events",
     {"headers": {"Last-Event-ID": "-1"}}, 400, "Last-Event-ID"),
    ("page beyond int64", "GET", "/api/datasets?page=99999999999999999999", {}, 400, "page"),
    ("NUL in a query parameter", "GET", "/api/datasets?search=a%00b", {}, 400, "search"),
    ("NUL in a dataset name", "POST", "/api/datasets", {"json": {**DATASET, "name": "chats\x00"}}, 400, "name"),
    ("a line break in a dataset name", "POST", "/api/datasets", {"json": {**DATASET, "name": "two\nlines"}}, 400,
     "name"),
    ("a lone surrogate in a dataset name", "POST", "/api/datasets",
     {"content": json.dumps({**DATASET, "name": "a\ud800"}).encode(), "headers": JSON_TYPE}, 400, "name"),
    ("NUL in a description", "POST", "/api/datasets", {"json": {**DATASET, "description": "\x00"}}, 400,
     "description"),
    ("NUL in a base model", "POST", "/api/jobs",
     {"json": {**JOB, "hyperparameters": {**HYPERPARAMETERS, "base_model": "a\x00"}}}, 400,
     "hyperparameters.base_model"),
    ("NUL in request_id", "POST", "/api/jobs", {"json": {**JOB, "request_id": "k\x00"}}, 400, "request_id"),
    ("an over-long Idempotency-Key", "POST", "/api/jobs", {"json": JOB, "headers": {"Idempotency-Key": "k" * 300}},
     400, "Idempotency-Key"),
    ("a string for an object", "POST", "/api/jobs", {"json": {**JOB, "gpu_config": "big"}}, 400, "gpu_config"),
    ("a string for a number", "POST", "/api/datasets", {"json": {**DATASET, "file_size": "100"}}, 400, "file_size"),
    ("a fraction for an integer", "POST", "/api/jobs/estimate",
     {"json": {**JOB, "hyperparameters": {**HYPERPARAMETERS, "rank": 4.5}}}, 400, "hyperparameters.rank"),
    ("an integer beyond int32", "POST", "/api/jobs",
     {"json": {**JOB, "gpu_config": {"type": "CPU", "count": 2**40}}}, 400, "gpu_config.count"),
    ("a 32 MiB body", "POST", "/api/jobs", {"content": b"x" * (32 << 20), "headers": JSON_TYPE}, 413, "bytes"),
    ("a 2 MiB chunked body", "POST", "/api/datasets", {"content": _chunks(2 << 20), "headers": JSON_TYPE}, 413,
     "bytes"),
]


@pytest.mark.parametrize(("what", "method", "path", "kwargs", "status", "mentions"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_input_is_a_4xx_with_the_specs_body(platform, api, what, method, path, kwargs, status, mentions):
    reply = api.request(method, path, **kwargs)
    assert reply.status_code == status, (reply.status_code, reply.text[:300])
    body = reply.json()
    assert set(body) == {"success", "error", "details", "code"} and body["error"]
    assert mentions in str(body["details"]), body


def test_extreme_but_valid_numbers_reach_the_services_and_are_answered(api):
    # The gateway lets these through: the services and PostgreSQL must cope with them.
    assert api.get(f"/api/jobs/{MISSING}/metrics?after_step={2**63 - 1}").status_code == 404
    assert api.get("/api/datasets?page=1000000000&limit=100").status_code == 200
    assert api.get("/api/notifications?limit=100").status_code == 200


def test_headers_too_large_are_refused_not_crashed(platform, api):
    token = api.get("/api/datasets", headers={"Authorization": "Bearer " + "a" * 60000})
    assert token.status_code == 401 and set(token.json()) == {"success", "error", "details", "code"}
    # Headers over 64 KiB in all: the gateway's own 431 (the HTTP server may refuse them first with its 400).
    huge = api.get("/api/datasets", headers={"X-Padding": "a" * (1 << 20)})
    assert huge.status_code in (400, 431)


def test_an_idempotency_key_reused_with_another_body_is_422_and_with_the_same_body_the_first_job(api, tmp_path):
    dataset = ready_dataset(api, tmp_path)
    body = {**JOB, "dataset_id": dataset["id"]}
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = api.post("/api/jobs", json=body, headers=key)
    assert first.status_code == 201, first.text
    job = first.json()["data"]["job"]
    try:
        again = api.post("/api/jobs", json=body, headers=key)
        assert again.status_code == 201 and again.json()["data"]["job"]["id"] == job["id"]
        other = {**body, "hyperparameters": {**HYPERPARAMETERS, "epochs": 3}}
        reused = api.post("/api/jobs", json=other, headers=key)
        assert reused.status_code == 422, reused.text
        assert "Idempotency-Key" in reused.json()["error"] and list(reused.json()["details"]) == ["Idempotency-Key"]
        listed = api.get("/api/jobs").json()["data"]["jobs"]
        assert [j["id"] for j in listed] == [job["id"]], "the reused key created a second job"
    finally:
        api.post(f"/api/jobs/{job['id']}/cancel")
