"""``/api/datasets``: create with a presigned upload URL, list, get, delete, confirm, revalidate (FR-2.x)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Route

from brightrun.dataset.v1 import dataset_pb2
from gateway.convert import enum_from_json, json_to_message, message_to_json, parse_json_object
from gateway.http import Page, caller, ok, path_id


async def create_dataset(request: Request):
    api = caller(request)
    body = parse_json_object(await request.body())
    message = json_to_message(body, dataset_pb2.CreateDatasetRequest, required=("name", "file_name", "file_size"))
    reply = await api(api.stubs.datasets.CreateDataset, message)
    # The spec's client reads camelCase uploadUrl/storagePath here (FR-2.1).
    data = {"dataset": message_to_json(reply.dataset), "uploadUrl": reply.upload_url, "storagePath": reply.storage_path}
    return ok(data, status=201)


async def list_datasets(request: Request):
    api = caller(request)
    page = Page.from_query(request, default_limit=25)
    status = request.query_params.get("status")
    message = dataset_pb2.ListDatasetsRequest(search=request.query_params.get("search", ""), **page.request_fields())
    if status:
        message.status = enum_from_json(dataset_pb2.DatasetStatus.DESCRIPTOR, status, "status")
    reply = await api(api.stubs.datasets.ListDatasets, message)
    total = reply.total_size
    return ok(
        {
            "datasets": [message_to_json(d) for d in reply.datasets],
            "total": total,
            "page": page.page,
            "limit": page.limit,
            "totalPages": page.total_pages(total),
        }
    )


async def get_dataset(request: Request):
    api = caller(request)
    reply = await api(api.stubs.datasets.GetDataset, dataset_pb2.GetDatasetRequest(dataset_id=path_id(request)))
    return ok({"dataset": message_to_json(reply.dataset)})


async def delete_dataset(request: Request):
    api = caller(request)
    reply = await api(api.stubs.datasets.DeleteDataset, dataset_pb2.DeleteDatasetRequest(dataset_id=path_id(request)))
    return ok({"dataset": message_to_json(reply.dataset)})


async def confirm_upload(request: Request):
    api = caller(request)
    reply = await api(api.stubs.datasets.ConfirmUpload, dataset_pb2.ConfirmUploadRequest(dataset_id=path_id(request)))
    return ok({"dataset": message_to_json(reply.dataset)})


async def revalidate_dataset(request: Request):
    """Body optional: ``{base_model?}`` re-validates against another base model's tokenizer."""
    api = caller(request)
    body = parse_json_object(await request.body(), optional=True)
    message = json_to_message(body, dataset_pb2.RevalidateDatasetRequest)
    message.dataset_id = path_id(request)
    reply = await api(api.stubs.datasets.RevalidateDataset, message)
    return ok({"dataset": message_to_json(reply.dataset)})


ROUTES = (
    Route("/api/datasets", create_dataset, methods=["POST"]),
    Route("/api/datasets", list_datasets, methods=["GET"]),
    Route("/api/datasets/{id:uuid}", get_dataset, methods=["GET"]),
    Route("/api/datasets/{id:uuid}", delete_dataset, methods=["DELETE"]),
    Route("/api/datasets/{id:uuid}/confirm", confirm_upload, methods=["POST"]),
    Route("/api/datasets/{id:uuid}/revalidate", revalidate_dataset, methods=["POST"]),
)
