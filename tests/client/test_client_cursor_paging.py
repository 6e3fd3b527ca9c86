"""The SDK's lists against the real embedded platform: iterators follow the gateway's ``next_cursor``, so a
dataset created during a walk of the newest-first list neither repeats one nor makes one skipped (a walk by
page number would read the second page shifted by it), and ``cursor=`` reads the page after a given one."""

from __future__ import annotations

import os
import uuid

import pytest

from brightrun_client import AsyncClient, Client
from gateway.auth import mint_token
from services.common.config import DEV_JWT_SECRET
from services.platform.launcher import Platform

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIGHTRUN_")}
    with Platform(tmp_path_factory.mktemp("brightrun-home"), env, http_port=0) as running:
        yield running


def _user_token() -> str:
    return mint_token(str(uuid.uuid4()), DEV_JWT_SECRET)


def _created(client: Client, count: int) -> list[str]:
    """Ids of ``count`` new datasets (registered, not uploaded), newest first as the list orders them."""
    ids = [client.create_dataset(f"d{i}", "d.jsonl", 10).dataset.id for i in range(count)]
    return ids[::-1]


def test_iter_datasets_follows_next_cursor_while_the_list_grows(platform):
    with Client(platform.gateway_url, _user_token()) as client:
        existing = _created(client, 5)
        seen = []
        for dataset in client.iter_datasets(limit=2):
            seen.append(dataset.id)
            if len(seen) == 1:  # a newer dataset, on the list's first page, while the walk is on it
                client.create_dataset("newer", "d.jsonl", 10)
        assert seen == existing


def test_a_page_read_from_a_cursor_is_the_one_after_it_and_the_last_has_none(platform):
    with Client(platform.gateway_url, _user_token()) as client:
        existing = _created(client, 3)
        first = client.list_datasets(limit=2)
        assert [d.id for d in first.items] == existing[:2] and first.has_more and first.next_cursor
        client.create_dataset("newer", "d.jsonl", 10)
        last = client.list_datasets(limit=2, cursor=first.next_cursor)
        assert [d.id for d in last.items] == existing[2:]
        assert (last.has_more, last.next_cursor) == (False, None)


async def test_the_async_client_follows_next_cursor_too(platform):
    async with AsyncClient(platform.gateway_url, _user_token()) as client:
        ids = [(await client.create_dataset(f"d{i}", "d.jsonl", 10)).dataset.id for i in range(5)]
        seen = []
        async for dataset in client.iter_datasets(limit=2):
            seen.append(dataset.id)
            if len(seen) == 1:
                await client.create_dataset("newer", "d.jsonl", 10)
        assert seen == ids[::-1]
        first = await client.list_datasets(limit=3)  # the newer one, then the two newest of ids
        after = await client.list_datasets(limit=3, cursor=first.next_cursor)
        assert [d.id for d in after.items] == ids[2::-1] and after.next_cursor is None
