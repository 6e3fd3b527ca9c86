"""``/api/jobs``: presets, GPU types, estimate, create, list, detail, cancel, metrics (FR-3.x, FR-4.x)."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.routing import Route

from brightrun.billing.v1 import billing_pb2
from brightrun.job.v1 import job_pb2
from gateway.convert import enum_from_json, json_to_message, message_to_json, parse_json_object
from gateway.errors import validation_error
from gateway.http import Caller, Page, caller, int_param, ok, path_id
from services.common.text import has_control_characters

# Everything else may be left out: job_svc fills it from the preset and the default GPU.
_ESTIMATE_REQUIRED = ("dataset_id",)
_CREATE_REQUIRED = ("dataset_id", "preset_id")
# The service's limit on a request id (services.job_svc.idempotency).
MAX_REQUEST_ID_LENGTH = 255
# The most metric points one answer carries (the service's page limit).
_DETAIL_METRIC_POINTS = 10000
_COST_RECORDS_PAGE = 100


async def list_presets(request: Request):
    api = caller(request)
    reply = await api(api.stubs.jobs.ListPresets, job_pb2.ListPresetsRequest())
    return ok({"presets": [message_to_json(p) for p in reply.presets]})


async def list_gpu_types(request: Request):
    api = caller(request)
    reply = await api(api.stubs.jobs.ListGpuTypes, job_pb2.ListGpuTypesRequest())
    return ok({"gpu_types": [message_to_json(g) for g in reply.gpu_types]})


async def estimate_job(request: Request):
    api = caller(request)
    body = parse_json_object(await request.body())
    message = json_to_message(body, job_pb2.EstimateJobRequest, required=_ESTIMATE_REQUIRED, uuids=("dataset_id",))
    reply = await api(api.stubs.jobs.EstimateJob, message)
    return ok(message_to_json(reply.estimate))


async def create_job(request: Request):
    """Body as FR-3.2; an ``Idempotency-Key`` header (or ``request_id``) makes a retry return the first job.

    Raises HttpError 400 for a bad body or key, 422 when the key was used with a different body.
    """
    api = caller(request)
    body = parse_json_object(await request.body())
    message = json_to_message(
        body, job_pb2.CreateJobRequest, required=_CREATE_REQUIRED, uuids=("dataset_id",)
    )
    message.request_id = _idempotency_key(request, message.request_id)
    reply = await api(api.stubs.jobs.CreateJob, message)
    return ok(message_to_json(reply.job), status=201, warnings=list(reply.warnings))


def _idempotency_key(request: Request, request_id: str) -> str:
    """The header's key, else the body's request_id; raises HttpError 400 naming whichever was sent."""
    header = request.headers.get("idempotency-key")
    key, field = (request_id, "request_id") if header is None else (header, "Idempotency-Key")
    if len(key) > MAX_REQUEST_ID_LENGTH or has_control_characters(key):
        problem = f"Must be at most {MAX_REQUEST_ID_LENGTH} characters and hold no control characters; use a UUID"
        raise validation_error({field: [problem]})
    return key


async def list_jobs(request: Request):
    api = caller(request)
    page = Page.from_query(request, default_limit=10)
    message = job_pb2.ListJobsRequest(**page.request_fields())
    status = request.query_params.get("status")
    if status:
        message.status = enum_from_json(job_pb2.JobStatus.DESCRIPTOR, status, "status")
    reply = await api(api.stubs.jobs.ListJobs, message)
    return ok({"jobs": [message_to_json(j) for j in reply.jobs], "pagination": page.pagination(reply.total_size)})


async def get_job(request: Request):
    """``{job, metrics, cost_records}``: the three reads run concurrently."""
    api = caller(request)
    job_id = path_id(request)
    job, metrics, records = await asyncio.gather(
        api(api.stubs.jobs.GetJob, job_pb2.GetJobRequest(job_id=job_id)),
        api(
            api.stubs.jobs.ListMetricPoints,
            job_pb2.ListMetricPointsRequest(job_id=job_id, page_size=_DETAIL_METRIC_POINTS),
        ),
        _all_cost_records(api, job_id),
    )
    return ok(
        {
            "job": message_to_json(job.job),
            "metrics": [message_to_json(m) for m in metrics.metric_points],
            "cost_records": records,
        }
    )


async def _all_cost_records(api: Caller, job_id: str) -> list[dict]:
    records: list[dict] = []
    token = ""
    while True:
        message = billing_pb2.ListCostRecordsRequest(job_id=job_id, page_size=_COST_RECORDS_PAGE, page_token=token)
        reply = await api(api.stubs.billing.ListCostRecords, message)
        records.extend(message_to_json(r) for r in reply.cost_records)
        token = reply.next_page_token
        if not token:
            return records


async def cancel_job(request: Request):
    api = caller(request)
    reply = await api(api.stubs.jobs.CancelJob, job_pb2.CancelJobRequest(job_id=path_id(request)))
    return ok({"job": message_to_json(reply.job)})


async def list_metric_points(request: Request):
    """``?after_step=N&limit=M``: the job's metric points with step greater than N."""
    api = caller(request)
    message = job_pb2.ListMetricPointsRequest(
        job_id=path_id(request),
        after_step=int_param(request, "after_step", 0, minimum=0),
        page_size=int_param(request, "limit", 1000, maximum=_DETAIL_METRIC_POINTS),
    )
    reply = await api(api.stubs.jobs.ListMetricPoints, message)
    return ok({"metrics": [message_to_json(m) for m in reply.metric_points]})


ROUTES = (
    Route("/api/jobs/presets", list_presets, methods=["GET"]),
    Route("/api/gpu-types", list_gpu_types, methods=["GET"]),
    Route("/api/jobs/estimate", estimate_job, methods=["POST"]),
    Route("/api/jobs", create_job, methods=["POST"]),
    Route("/api/jobs", list_jobs, methods=["GET"]),
    Route("/api/jobs/{id:uuid}", get_job, methods=["GET"]),
    Route("/api/jobs/{id:uuid}/cancel", cancel_job, methods=["POST"]),
    Route("/api/jobs/{id:uuid}/metrics", list_metric_points, methods=["GET"]),
)
