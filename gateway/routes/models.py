"""``/api/models``: the user's trained adapters, their download URLs, deletion (FR-5.x)."""

from __future__ import annotations

import asyncio

import grpc
from starlette.requests import Request

from brightrun.artifact.v1 import artifact_pb2
from brightrun.dataset.v1 import dataset_pb2
from gateway.convert import message_to_json
from gateway.declare import PAGINATION, Body, Endpoint, Param, page_params
from gateway.errors import validation_error
from gateway.http import Caller, Page, caller, path_id
from gateway.routes.jobs import DATASET_REF
from gateway.schema import array, message_schema, obj

DOWNLOAD_BODY = Body(artifact_pb2.GetDownloadUrlsRequest, hidden=("artifact_id",), optional=True)

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


async def delete_model(request: Request):
    api = caller(request)
    message = artifact_pb2.DeleteArtifactRequest(artifact_id=path_id(request))
    reply = await api(api.stubs.artifacts.DeleteArtifact, message)
    return api.ok({"model": message_to_json(reply.artifact)})


MODEL = message_schema(artifact_pb2.ModelArtifact.DESCRIPTOR)
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
)
