"""``/api/models``: the user's trained adapters, their download URLs, deletion (FR-5.x), and
sampling from one ("Try it", run by a trainer agent through artifact_svc's Generate)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import grpc
from starlette.requests import Request

from brightrun.artifact.v1 import artifact_pb2
from brightrun.dataset.v1 import dataset_pb2
from gateway.convert import json_to_message, message_to_json, parse_json_object
from gateway.declare import PAGINATION, Body, Endpoint, Param, page_params
from gateway.errors import HttpError, validation_error
from gateway.http import Caller, Page, caller, path_id
from gateway.routes.jobs import DATASET_REF
from gateway.schema import array, message_schema, obj
from services.common.sampling import DEFAULT_MAX_NEW_TOKENS, MAX_ITEMS, MAX_NEW_TOKENS, MAX_PROMPT_CHARACTERS

DOWNLOAD_BODY = Body(artifact_pb2.GetDownloadUrlsRequest, hidden=("artifact_id",), optional=True)
# How long the gateway waits for Generate: loading a real model on an agent takes minutes, and
# artifact_svc answers no_agent_available itself once an agent stays silent for BRIGHTRUN_GENERATE_TIMEOUT_SECONDS.
GENERATE_RPC_TIMEOUT_S = 1800.0


@dataclass(frozen=True)
class GenerateBody(Body):
    """GenerateRequest, but with ``conversations`` as the HTTP contract writes them: a list of message lists
    (the proto wraps each in ``{messages}``, and json_to_message reads no list of messages). Only types are
    checked here; the bounds are artifact_svc's (``services.common.sampling``)."""

    def parse(self, raw: bytes):
        """The body as a GenerateRequest; raises HttpError 400 naming each field of the wrong type
        (``conversations[0][1].role``, ``max_new_tokens``, ...)."""
        data = parse_json_object(raw, optional=self.optional)
        conversations = data.pop("conversations", None)
        problems: dict[str, list[str]] = {}
        message = self.message()
        try:
            message = json_to_message(data, self.message, hidden=self.hidden)
        except HttpError as exc:
            problems.update(exc.details)
        if conversations is not None and not isinstance(conversations, list):
            problems["conversations"] = ["Expected an array of conversations, each an array of {role, content}"]
        for i, messages in enumerate(conversations if isinstance(conversations, list) else ()):
            if not isinstance(messages, list):
                problems[f"conversations[{i}]"] = ["Expected an array of {role, content} messages"]
                continue
            conversation = message.conversations.add()
            for j, item in enumerate(messages):
                where = f"conversations[{i}][{j}]"
                if not isinstance(item, dict):
                    problems[where] = ["Expected an object {role, content}"]
                    continue
                try:
                    conversation.messages.append(json_to_message(item, artifact_pb2.ChatMessage))
                except HttpError as exc:
                    problems.update({f"{where}.{name}": texts for name, texts in exc.details.items()})
        if problems:
            raise validation_error(problems)
        return message

    def schema(self) -> dict:
        schema = super().schema()
        properties = schema["properties"]
        properties["conversations"] = {
            **array(properties["conversations"]["items"]["properties"]["messages"]),
            "description": f"Conversations ending with a user message, each a list of {{role, content}}; "
                           f"1 to {MAX_ITEMS}, each at most {MAX_PROMPT_CHARACTERS} characters in all",
        }
        return schema


GENERATE_BODY = GenerateBody(
    artifact_pb2.GenerateRequest, hidden=("artifact_id",),
    descriptions={
        "prompts": f"Single-turn prompts, 1 to {MAX_ITEMS}, each at most {MAX_PROMPT_CHARACTERS} characters "
                   "(send prompts or conversations, not both)",
        "max_new_tokens": f"1 to {MAX_NEW_TOKENS}; default {DEFAULT_MAX_NEW_TOKENS}",
        "temperature": "0 (greedy, the default) to 2",
        "seed": "Seed of the sampling: the same request with the same seed gives the same text",
        "include_base": "Also answer with the base model alone (the adapter disabled), as base_completion",
    },
)

EXPORT_BODY = Body(artifact_pb2.CreateExportRequest, hidden=("artifact_id",), optional=True,
                   descriptions={"kind": "merged (the default): the base model with the adapter merged in"})

# The spec's page offers "created_at" (most recent) and "quality"; "created" is the service's name.
_SORTS = {"created": "created", "created_at": "created", "quality": "quality"}


async def list_models(request: Request):
    """``?sort=created|quality&page=&limit=`` -> ``{models, pagination}``."""
    api = caller(request)
    page = Page.from_query(request, default_limit=12)
    sort = request.query_params.get("sort") or "created"
    if sort not in _SORTS:
        raise validation_error({"sort": ["Must be one of: created, quality"]})
    message = artifact_pb2.ListArtifactsRequest(order_by=_SORTS[sort], **page.request_fields())
    reply = await page.fetch(api, api.stubs.artifacts.ListArtifacts, message)
    names = await _dataset_names(api, {a.dataset_id for a in reply.artifacts})
    models = [{**message_to_json(a), "dataset": {"id": a.dataset_id, "name": names[a.dataset_id]}} for a in reply.artifacts]
    return api.ok({"models": models, "pagination": page.pagination(reply.total_size, reply.next_page_token)})


async def _dataset_names(api: Caller, dataset_ids: set[str]) -> dict[str, str | None]:
    """Each dataset's name; None for one deleted since."""

    async def name(dataset_id: str) -> str | None:
        try:
            reply = await api(api.stubs.datasets.GetDataset, dataset_pb2.GetDatasetRequest(dataset_id=dataset_id))
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise
        return reply.dataset.name

    ids = sorted(dataset_ids)
    return dict(zip(ids, await asyncio.gather(*map(name, ids))))


async def get_model(request: Request):
    api = caller(request)
    reply = await api(api.stubs.artifacts.GetArtifact, artifact_pb2.GetArtifactRequest(artifact_id=path_id(request)))
    return api.ok({"model": message_to_json(reply.artifact)})


async def download_model(request: Request):
    """Body optional ``{files: [names]}`` (default: every file) -> ``{download_urls, expires_at}``."""
    api = caller(request)
    message = DOWNLOAD_BODY.parse(await request.body())
    message.artifact_id = path_id(request)
    reply = await api(api.stubs.artifacts.GetDownloadUrls, message)
    return api.ok(message_to_json(reply))


async def generate(request: Request):
    """Body ``{prompts | conversations, max_new_tokens, temperature, seed, include_base}`` -> ``{model_id, results}``."""
    api = caller(request)
    message = GENERATE_BODY.parse(await request.body())
    message.artifact_id = path_id(request)
    reply = await api(api.stubs.artifacts.Generate, message, timeout=GENERATE_RPC_TIMEOUT_S)
    results = [
        {"prompt": r.prompt, "completion": r.completion,
         **({"base_completion": r.base_completion} if r.HasField("base_completion") else {})}
        for r in reply.results
    ]
    return api.ok({"model_id": reply.model_id, "results": results})


async def create_export(request: Request):
    """Body ``{kind: "merged"}`` (optional) -> ``{export}``, 202: queued for a trainer agent, or the live one."""
    api = caller(request)
    message = EXPORT_BODY.parse(await request.body())
    message.artifact_id = path_id(request)
    reply = await api(api.stubs.artifacts.CreateExport, message)
    return api.ok({"export": message_to_json(reply.export)}, status=202)


async def list_exports(request: Request):
    api = caller(request)
    reply = await api(api.stubs.artifacts.ListExports, artifact_pb2.ListExportsRequest(artifact_id=path_id(request)))
    return api.ok({"exports": [message_to_json(e) for e in reply.exports]})


async def get_export(request: Request):
    """-> ``{export, download_urls, expires_at}``; the URLs once the export completed."""
    api = caller(request)
    message = artifact_pb2.GetExportRequest(artifact_id=path_id(request), export_id=path_id(request, "export_id"))
    reply = await api(api.stubs.artifacts.GetExport, message)
    return api.ok(message_to_json(reply))


async def delete_model(request: Request):
    api = caller(request)
    message = artifact_pb2.DeleteArtifactRequest(artifact_id=path_id(request))
    reply = await api(api.stubs.artifacts.DeleteArtifact, message)
    return api.ok({"model": message_to_json(reply.artifact)})


MODEL = message_schema(artifact_pb2.ModelArtifact.DESCRIPTOR)
EXPORT = message_schema(artifact_pb2.ModelExport.DESCRIPTOR)
_LISTED = obj(**MODEL["properties"], dataset=DATASET_REF)

ENDPOINTS = (
    Endpoint("GET", "/api/models", list_models, "The caller's trained adapters",
             obj(models=array(_LISTED), pagination=PAGINATION),
             params=(*page_params(12), Param("sort", {"type": "string", "enum": list(_SORTS)},
                                             "created (newest first) or quality"))),
    Endpoint("GET", "/api/models/{id}", get_model, "A trained adapter", obj(model=MODEL)),
    Endpoint("DELETE", "/api/models/{id}", delete_model, "Delete a trained adapter", obj(model=MODEL)),
    Endpoint("POST", "/api/models/{id}/download", download_model, "Presigned download URLs of its files",
             message_schema(artifact_pb2.GetDownloadUrlsResponse.DESCRIPTOR), body=DOWNLOAD_BODY),
    Endpoint("POST", "/api/models/{id}/generate", generate, "Sample from a trained adapter (and its base model)",
             obj(model_id={"type": "string"}, results=array(obj(
                 prompt={"type": "string"}, completion={"type": "string"}, base_completion={"type": "string"}))),
             body=GENERATE_BODY,
             description="Run by a trainer agent of the model's GPU type. 404 for another user's model; 409 "
                         "(model_not_ready) without its adapter; 429 (too_many_generations) beyond "
                         "BRIGHTRUN_GENERATE_CONCURRENCY_PER_USER requests at once; 503 (no_agent_available) when "
                         "no agent answers within BRIGHTRUN_GENERATE_TIMEOUT_SECONDS. base_completion only with "
                         "include_base."),
    Endpoint("POST", "/api/models/{id}/exports", create_export,
             "Export the model merged into its base (safetensors shards), made by a trainer agent",
             obj(export=EXPORT), body=EXPORT_BODY, status=202),
    Endpoint("GET", "/api/models/{id}/exports", list_exports, "The model's exports, newest first",
             obj(exports=array(EXPORT))),
    Endpoint("GET", "/api/models/{id}/exports/{export_id}", get_export,
             "One export: its status and, once completed, presigned download URLs of its files",
             message_schema(artifact_pb2.GetExportResponse.DESCRIPTOR)),
)
