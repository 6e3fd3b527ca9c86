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
