"""Iterating the API's page/limit lists, in either of the shapes the gateway answers with."""

from __future__ import annotations

import math

from brightrun_client import AsyncClient, Client
from scripted import ok

ITEMS = [{"id": f"id-{i}", "name": f"item {i}", "status": "ready"} for i in range(5)]


def _lists(key: str, shape: str):
    def respond(seen, handler):
        page, limit = int(seen.query.get("page", 1)), int(seen.query["limit"])
        items = ITEMS[(page - 1) * limit: page * limit]
        meta = {"page": page, "limit": limit, "total": len(ITEMS), "totalPages": math.ceil(len(ITEMS) / limit)}
        if shape == "pagination":
            return ok({key: items, "pagination": meta})
        if shape == "flat":
            return ok({key: items, **meta})
        return ok({key: items})  # no page count at all

    return respond


def test_datasets_flat_page_fields_are_followed_to_the_last_page(server):
    server.respond = _lists("datasets", "flat")
    with Client(server.url, "t") as client:
        assert [d.id for d in client.iter_datasets(limit=2, status="ready")] == [i["id"] for i in ITEMS]
    assert [(r.query["page"], r.query["limit"], r.query["status"]) for r in server.requests] == [
        ("1", "2", "ready"), ("2", "2", "ready"), ("3", "2", "ready")]


def test_the_pagination_object_is_followed_to_the_last_page(server):
    server.respond = _lists("jobs", "pagination")
    with Client(server.url, "t") as client:
        first = client.list_jobs(page=1, limit=2)
        assert (first.total, first.total_pages, first.has_more) == (5, 3, True)
        assert [j.id for j in client.iter_jobs(limit=2)] == [i["id"] for i in ITEMS]
    assert [r.query["page"] for r in server.requests[1:]] == ["1", "2", "3"]


def test_without_a_page_count_a_short_page_is_the_last(server):
    server.respond = _lists("models", "bare")
    with Client(server.url, "t") as client:
        assert [m.id for m in client.iter_models(limit=3)] == [i["id"] for i in ITEMS]
    assert len(server.requests) == 2


async def test_the_async_client_iterates_pages_and_asks_for_none_past_the_page_count(server):
    server.respond = _lists("datasets", "pagination")
    async with AsyncClient(server.url, "t") as client:
        assert [d.id async for d in client.iter_datasets(limit=4)] == [i["id"] for i in ITEMS]
        assert len(server.requests) == 2
        # A full page that totalPages says is the last: no request for an empty page after it.
        assert len([d async for d in client.iter_datasets(limit=5)]) == 5
    assert len(server.requests) == 3


def test_a_jobs_latest_metric_points_and_the_older_ones_read_back_by_step(server):
    point = lambda step: {"step": step, "epoch": 1, "training_loss": 1.0, "learning_rate": 1e-4}  # noqa: E731

    def respond(seen, handler):
        if seen.path.endswith("/metrics"):
            before = int(seen.query["before_step"])
            return ok({"metrics": [point(s) for s in range(max(1, before - 2), before)],
                       "older_before_step": before - 2 if before > 3 else None})
        return ok({"job": {"id": "j"}, "metrics": [point(5), point(6)], "older_metrics_before_step": 5,
                   "cost_records": []})

    server.respond = respond
    with Client(server.url, "t") as client:
        detail = client.get_job("j", metrics_limit=2)
        assert [p.step for p in detail.metrics] == [5, 6] and detail.older_metrics_before_step == 5
        older = client.list_metrics("j", limit=2, before_step=detail.older_metrics_before_step)
        assert [p.step for p in older] == [3, 4]
    assert server.requests[0].query == {"metrics_limit": "2"}
    assert server.requests[1].query == {"limit": "2", "before_step": "5"}
