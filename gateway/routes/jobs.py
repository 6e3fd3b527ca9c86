"""``/api/jobs``: presets, GPU types, estimate, create, list, detail, cancel, metrics (FR-3.x, FR-4.x)."""

from __future__ import annotations

from starlette.requests import Request

from brightrun.billing.v1 import billing_pb2
from brightrun.job.v1 import job_pb2
from gateway.convert import enum_from_json, message_to_json
from gateway.declare import IDEMPOTENCY_KEY, PAGINATION, Body, Endpoint, Param, page_params
from gateway.http import INT64_MAX, Page, caller, idempotency_key, int_param, path_id
from gateway.schema import array, message_schema, nullable, obj
from services.common.training_choices import HYPERPARAMETER_RANGES

# The most metric points one answer carries (the service's page limit), and how many of the latest a job's
# detail carries unless ?metrics_limit= asks otherwise.
_MAX_METRIC_POINTS = 10000
_DETAIL_METRIC_POINTS = 500

# What a request sets; the rest of GpuConfig is the catalogue's, in answers only.
_HIDDEN = ("gpu_config.gpu_memory_gb", "gpu_config.cost_per_gpu_hour")
_RANGES = {
    **{f"hyperparameters.{name}": limits for name, limits in HYPERPARAMETER_RANGES.items()},
    "gpu_config.count": (1, 8),
}
_DESCRIPTIONS = {
    "preset_id": "A preset id from GET /api/jobs/presets; its values fill every hyperparameter left out. "
    "custom needs learning_rate, batch_size, epochs and rank.",
    "gpu_config": "Leave out for one GPU of the default type",
    "hyperparameters": "Each field given overrides the preset's; an explicit 0 is checked, never a default",
    "estimated_cost": "The estimate the user saw; recomputed when left out",
    "request_id": "Idempotency key, as the Idempotency-Key header",
    "parent_model_id": "A model of yours to continue training: the job starts from its adapter's weights. "
    "It must have the job's base model and rank.",
}
ESTIMATE_BODY = Body(
    job_pb2.EstimateJobRequest, required=("dataset_id",), uuids=("dataset_id",), hidden=_HIDDEN, ranges=_RANGES,
    descriptions={**_DESCRIPTIONS, "preset_id": "As for POST /api/jobs; left out: custom"},
)
CREATE_BODY = Body(
    job_pb2.CreateJobRequest, required=("dataset_id", "preset_id"), uuids=("dataset_id", "parent_model_id"),
    hidden=_HIDDEN,
    ranges=_RANGES, descriptions=_DESCRIPTIONS,
)
DATASET_REF = obj(id={"type": "string"}, name=nullable({"type": "string"}))


def job_json(job: job_pb2.Job) -> dict:
    """A job as every route answers it: its fields, with ``dataset`` ``{id, name}`` in place of dataset_name."""
    data = message_to_json(job)
    data["dataset"] = {"id": job.dataset_id, "name": data.pop("dataset_name") or None}
    return data


def _job_schema() -> dict:
    schema = message_schema(job_pb2.Job.DESCRIPTOR)
    properties = {k: v for k, v in schema["properties"].items() if k != "dataset_name"}
    return obj(**properties, dataset=DATASET_REF)


JOB = _job_schema()


async def list_presets(request: Request):
    api = caller(request)
    reply = await api(api.stubs.jobs.ListPresets, job_pb2.ListPresetsRequest())
    return api.ok({"presets": [message_to_json(p) for p in reply.presets]})


async def list_gpu_types(request: Request):
    api = caller(request)
    reply = await api(api.stubs.jobs.ListGpuTypes, job_pb2.ListGpuTypesRequest())
    return api.ok({"gpu_types": [message_to_json(g) for g in reply.gpu_types]})


async def estimate_job(request: Request):
    api = caller(request)
    message = ESTIMATE_BODY.parse(await request.body())
    reply = await api(api.stubs.jobs.EstimateJob, message)
    return api.ok(message_to_json(reply.estimate))


async def create_job(request: Request):
    """Body as FR-3.2; an ``Idempotency-Key`` header (or ``request_id``) makes a retry return the first job.

    Raises HttpError 400 for a bad body or key, 422 when the key was used with a different body.
    """
    api = caller(request)
    message = CREATE_BODY.parse(await request.body())
    message.request_id = idempotency_key(request, message.request_id)
    reply = await api(api.stubs.jobs.CreateJob, message)
    return api.ok({"job": job_json(reply.job)}, status=201, warnings=list(reply.warnings))


async def list_jobs(request: Request):
    api = caller(request)
    page = Page.from_query(request, default_limit=10)
    message = job_pb2.ListJobsRequest(**page.request_fields())
    status = request.query_params.get("status")
    if status:
        message.status = enum_from_json(job_pb2.JobStatus.DESCRIPTOR, status, "status")
    reply = await page.fetch(api, api.stubs.jobs.ListJobs, message)
    return api.ok({"jobs": [job_json(j) for j in reply.jobs],
                   "pagination": page.pagination(reply.total_size, reply.next_page_token)})


async def get_job(request: Request):
    """``{job, metrics, older_metrics_before_step, cost_records}`` from ONE job_svc call (one statement there):
    the job, its latest metric points and its cost records, newest first. The records are job_svc's copy of
    billing_svc's (services.job_svc.cost_records), so one billing wrote a moment ago shows once its event has
    been delivered; GET /api/costs reads billing's own. Older points:
    GET /api/jobs/{id}/metrics?before_step=older_metrics_before_step."""
    api = caller(request)
    window = int_param(request, "metrics_limit", _DETAIL_METRIC_POINTS, maximum=_MAX_METRIC_POINTS)
    message = job_pb2.GetJobDetailRequest(job_id=path_id(request), metric_page_size=window)
    detail = await api(api.stubs.jobs.GetJobDetail, message)
    return api.ok(
        {
            "job": job_json(detail.job),
            "metrics": [message_to_json(m) for m in detail.metric_points],
            "older_metrics_before_step": detail.older_before_step or None,
            "cost_records": [message_to_json(r) for r in detail.cost_records],
        }
    )


async def cancel_job(request: Request):
    api = caller(request)
    reply = await api(api.stubs.jobs.CancelJob, job_pb2.CancelJobRequest(job_id=path_id(request)))
    return api.ok({"job": job_json(reply.job)})


async def list_metric_points(request: Request):
    """``?after_step=N&limit=M``: the job's first M metric points with step greater than N; with
    ``before_step=B``, its latest M below B, and ``older_before_step`` to page further back."""
    api = caller(request)
    message = job_pb2.ListMetricPointsRequest(
        job_id=path_id(request),
        after_step=int_param(request, "after_step", 0, minimum=0),
        before_step=int_param(request, "before_step", 0, minimum=1),
        page_size=int_param(request, "limit", 1000, maximum=_MAX_METRIC_POINTS),
    )
    reply = await api(api.stubs.jobs.ListMetricPoints, message)
    return api.ok({
        "metrics": [message_to_json(m) for m in reply.metric_points],
        "older_before_step": reply.older_before_step or None,
    })


_PRESET = obj(id={"type": "string"}, name={"type": "string"}, description={"type": "string"},
              hyperparameters=message_schema(job_pb2.Hyperparameters.DESCRIPTOR))
_METRIC = message_schema(job_pb2.MetricPoint.DESCRIPTOR)
_COST_RECORD = message_schema(billing_pb2.CostRecord.DESCRIPTOR)
_STATUS = Param("status", {"type": "string", "enum": ["queued", "initializing", "running", "completed", "failed",
                                                      "cancelled"]}, "Only jobs in this status")
_AFTER_STEP = Param("after_step", {"type": "integer", "minimum": 0, "maximum": INT64_MAX, "default": 0},
                    "Only metric points with a greater step")
_BEFORE_STEP = Param("before_step", {"type": "integer", "minimum": 1, "maximum": INT64_MAX},
                     "The latest metric points with a smaller step: a detail's older_metrics_before_step, or "
                     "this answer's older_before_step to page further back")
_OLDER = nullable({"type": "integer"})
_METRICS_LIMIT = Param("metrics_limit", {"type": "integer", "minimum": 1, "maximum": _MAX_METRIC_POINTS,
                                         "default": _DETAIL_METRIC_POINTS}, "How many of the latest metric points")

ENDPOINTS = (
    Endpoint("GET", "/api/jobs/presets", list_presets, "The training presets with their values",
             obj(presets=array(_PRESET))),
    Endpoint("GET", "/api/gpu-types", list_gpu_types, "The GPU catalogue with prices",
             obj(gpu_types=array(message_schema(job_pb2.GpuType.DESCRIPTOR)))),
    Endpoint("POST", "/api/jobs/estimate", estimate_job, "Cost, duration and memory of a configuration",
             message_schema(job_pb2.Estimate.DESCRIPTOR), body=ESTIMATE_BODY),
    Endpoint("POST", "/api/jobs", create_job, "Queue a training job", obj(job=JOB), body=CREATE_BODY,
             params=(IDEMPOTENCY_KEY,), status=201, warnings=True),
    Endpoint("GET", "/api/jobs", list_jobs, "The caller's jobs, newest first",
             obj(jobs=array(JOB), pagination=PAGINATION), params=(*page_params(10), _STATUS)),
    Endpoint("GET", "/api/jobs/{id}", get_job, "A job with its latest metric points and its cost records",
             obj(job=JOB, metrics=array(_METRIC), older_metrics_before_step=_OLDER, cost_records=array(_COST_RECORD)),
             params=(_METRICS_LIMIT,)),
    Endpoint("POST", "/api/jobs/{id}/cancel", cancel_job, "Cancel a job not yet ended", obj(job=JOB)),
    Endpoint("GET", "/api/jobs/{id}/metrics", list_metric_points, "A job's metric points after or before a step",
             obj(metrics=array(_METRIC), older_before_step=_OLDER),
             params=(_AFTER_STEP, _BEFORE_STEP,
                     Param("limit", {"type": "integer", "minimum": 1, "maximum": _MAX_METRIC_POINTS,
                                     "default": 1000}, "Most points to return"))),
)
