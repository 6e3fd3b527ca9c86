"""``/api/datasets``: create with a presigned upload URL, list, get, delete, confirm, revalidate (FR-2.x)."""

from __future__ import annotations

from starlette.requests import Request

from brightrun.dataset.v1 import dataset_pb2
from gateway.convert import enum_from_json, message_to_json
from gateway.declare import IDEMPOTENCY_KEY, PAGINATION, Body, Endpoint, Param, page_params
from gateway.http import Page, caller, idempotency_key, path_id
from gateway.schema import array, message_schema, obj

CREATE_BODY = Body(dataset_pb2.CreateDatasetRequest, required=("name", "file_name", "file_size"))
REVALIDATE_BODY = Body(dataset_pb2.RevalidateDatasetRequest, hidden=("dataset_id",), optional=True)


async def create_dataset(request: Request):
    api = caller(request)
    message = CREATE_BODY.parse(await request.body())
    message.request_id = idempotency_key(request, message.request_id)
    reply = await api(api.stubs.datasets.CreateDataset, message)
    # The spec's client reads camelCase uploadUrl/storagePath here (FR-2.1).
    data = {"dataset": message_to_json(reply.dataset), "uploadUrl": reply.upload_url, "storagePath": reply.storage_path}
    return api.ok(data, status=201)


async def list_datasets(request: Request):
    api = caller(request)
    page = Page.from_query(request, default_limit=25)
    status = request.query_params.get("status")
    message = dataset_pb2.ListDatasetsRequest(search=request.query_params.get("search", ""), **page.request_fields())
    if status:
        message.status = enum_from_json(dataset_pb2.DatasetStatus.DESCRIPTOR, status, "status")
    reply = await page.fetch(api, api.stubs.datasets.ListDatasets, message)
    return api.ok({"datasets": [message_to_json(d) for d in reply.datasets],
                   "pagination": page.pagination(reply.total_size, reply.next_page_token)})


async def get_dataset(request: Request):
    api = caller(request)
    reply = await api(api.stubs.datasets.GetDataset, dataset_pb2.GetDatasetRequest(dataset_id=path_id(request)))
    return api.ok({"dataset": message_to_json(reply.dataset)})


async def delete_dataset(request: Request):
    api = caller(request)
    reply = await api(api.stubs.datasets.DeleteDataset, dataset_pb2.DeleteDatasetRequest(dataset_id=path_id(request)))
    return api.ok({"dataset": message_to_json(reply.dataset)})


async def confirm_upload(request: Request):
    api = caller(request)
    reply = await api(api.stubs.datasets.ConfirmUpload, dataset_pb2.ConfirmUploadRequest(dataset_id=path_id(request)))
    return api.ok({"dataset": message_to_json(reply.dataset)})


async def revalidate_dataset(request: Request):
    """Body optional: ``{base_model?}`` re-validates against another base model's tokenizer."""
    api = caller(request)
    message = REVALIDATE_BODY.parse(await request.body())
    message.dataset_id = path_id(request)
    reply = await api(api.stubs.datasets.RevalidateDataset, message)
    return api.ok({"dataset": message_to_json(reply.dataset)})


DATASET = message_schema(dataset_pb2.Dataset.DESCRIPTOR)
_ONE = obj(dataset=DATASET)
_STATUS = Param("status", {"type": "string", "enum": ["uploading", "validating", "ready", "error"]},
                "Only datasets in this status")

ENDPOINTS = (
    Endpoint("POST", "/api/datasets", create_dataset, "Create a dataset and get its presigned upload URL",
             obj(dataset=DATASET, uploadUrl={"type": "string"}, storagePath={"type": "string"}),
             body=CREATE_BODY, params=(IDEMPOTENCY_KEY,), status=201),
    Endpoint("GET", "/api/datasets", list_datasets, "The caller's datasets, newest first",
             obj(datasets=array(DATASET), pagination=PAGINATION),
             params=(*page_params(25), _STATUS, Param("search", {"type": "string"}, "Names containing this"))),
    Endpoint("GET", "/api/datasets/{id}", get_dataset, "A dataset", _ONE),
    Endpoint("DELETE", "/api/datasets/{id}", delete_dataset, "Delete a dataset no job is using", _ONE),
    Endpoint("POST", "/api/datasets/{id}/confirm", confirm_upload, "Confirm the upload: validation starts", _ONE),
    Endpoint("POST", "/api/datasets/{id}/revalidate", revalidate_dataset,
             "Validate again, optionally against another base model's tokenizer", _ONE, body=REVALIDATE_BODY),
)
