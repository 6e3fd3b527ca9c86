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
    reply = await api(api.stubs.artifacts.ListArtifacts, message)
    names = await _dataset_names(api, {a.dataset_id for a in reply.artifacts})
    models = [{**message_to_json(a), "dataset": {"id": a.dataset_id, "name": names[a.dataset_id]}} for a in reply.artifacts]
    return api.ok({"models": models, "pagination": page.pagination(reply.total_size)})


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
    Endpoint("POST", "/api/models/{id}/exports", create_export,
             "Export the model merged into its base (safetensors shards), made by a trainer agent",
             obj(export=EXPORT), body=EXPORT_BODY, status=202),
    Endpoint("GET", "/api/models/{id}/exports", list_exports, "The model's exports, newest first",
             obj(exports=array(EXPORT))),
    Endpoint("GET", "/api/models/{id}/exports/{export_id}", get_export,
             "One export: its status and, once completed, presigned download URLs of its files",
             message_schema(artifact_pb2.GetExportResponse.DESCRIPTOR)),
)
