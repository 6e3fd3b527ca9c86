"""The generate body as the HTTP contract writes it: conversations are lists of
{role, content} lists, read into the proto's {messages} wrappers, with every
field of the wrong type named."""

import json

import pytest

from gateway.errors import HttpError
from gateway.routes.models import GENERATE_BODY


def _parse(body: dict):
    return GENERATE_BODY.parse(json.dumps(body).encode())


def test_conversations_are_lists_of_messages():
    message = _parse({"conversations": [[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]],
                      "max_new_tokens": 4, "include_base": True})
    [conversation] = message.conversations
    assert [(m.role, m.content) for m in conversation.messages] == [("system", "be brief"), ("user", "hi")]
    assert (message.max_new_tokens, message.include_base, message.HasField("temperature")) == (4, True, False)


def test_every_field_of_the_wrong_type_is_named():
    with pytest.raises(HttpError) as caught:
        _parse({"conversations": [[{"role": 3}], "x", [5]], "temperature": "hot", "prompt": "typo"})
    assert caught.value.status == 400
    assert set(caught.value.details) == {"conversations[0][0].role", "conversations[1]", "conversations[2][0]",
                                         "temperature", "prompt"}


def test_the_openapi_schema_shows_conversations_as_lists_of_messages():
    schema = GENERATE_BODY.schema()["properties"]["conversations"]
    assert schema["type"] == "array" and schema["items"]["type"] == "array"
    assert set(schema["items"]["items"]["properties"]) == {"role", "content"}
