"""``/api/models``: the user's trained adapters, their download URLs, deletion (FR-5.x)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Route

from brightrun.artifact.v1 import artifact_pb2
from gateway.convert import json_to_message, message_to_json, parse_json_object
from gateway.errors import validation_error
from gateway.http import Page, caller, ok, path_id

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
    reply = await api(api.stubs.artifacts.ListArtifacts, message)
    models = [message_to_json(a) for a in reply.artifacts]
    return ok({"models": models, "pagination": page.pagination(reply.total_size)})


async def get_model(request: Request):
    api = caller(request)
    reply = await api(api.stubs.artifacts.GetArtifact, artifact_pb2.GetArtifactRequest(artifact_id=path_id(request)))
    return ok({"model": message_to_json(reply.artifact)})


async def download_model(request: Request):
    """Body optional ``{files: [names]}`` (default: every file) -> ``{download_urls, expires_at}``."""
    api = caller(request)
    body = parse_json_object(await request.body(), optional=True)
    message = json_to_message(body, artifact_pb2.GetDownloadUrlsRequest)
    message.artifact_id = path_id(request)
    reply = await api(api.stubs.artifacts.GetDownloadUrls, message)
    return ok(message_to_json(reply))


async def delete_model(request: Request):
    api = caller(request)
    message = artifact_pb2.DeleteArtifactRequest(artifact_id=path_id(request))
    reply = await api(api.stubs.artifacts.DeleteArtifact, message)
    return ok({"model": message_to_json(reply.artifact)})


ROUTES = (
    Route("/api/models", list_models, methods=["GET"]),
    Route("/api/models/{id:uuid}", get_model, methods=["GET"]),
    Route("/api/models/{id:uuid}", delete_model, methods=["DELETE"]),
    Route("/api/models/{id:uuid}/download", download_model, methods=["POST"]),
)
