"""``generate`` in both clients: the body the HTTP contract takes, the ``data`` dict back."""

from __future__ import annotations

import json

from brightrun_client import AsyncClient, Client
from scripted import ok

ANSWER = {"model_id": "m1", "results": [{"prompt": "hi", "completion": "HI", "base_completion": "hm"}]}


def test_generate_sends_the_prompts_and_settings_and_returns_the_data(server):
    server.respond = lambda seen, handler: ok(ANSWER)
    with Client(server.url, "t") as client:
        assert client.generate("m1", prompts=["hi"], max_new_tokens=16, seed=3, include_base=True) == ANSWER
        client.generate("m1", conversations=[[{"role": "user", "content": "hi"}]])
    first, second = server.requests
    assert (first.method, first.path) == ("POST", "/api/models/m1/generate")
    assert json.loads(first.body) == {"prompts": ["hi"], "max_new_tokens": 16, "temperature": 0.0, "seed": 3,
                                      "include_base": True}
    assert json.loads(second.body) == {"conversations": [[{"role": "user", "content": "hi"}]], "max_new_tokens": 128,
                                       "temperature": 0.0, "include_base": False}


async def test_the_async_client_generates_alike(server):
    server.respond = lambda seen, handler: ok(ANSWER)
    async with AsyncClient(server.url, "t") as client:
        assert await client.generate("m1", prompts=["hi"], temperature=0.7) == ANSWER
    assert json.loads(server.requests[0].body)["temperature"] == 0.7
