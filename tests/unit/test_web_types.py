"""The dashboard's API types (gateway/web/src/types.ts) name only fields the
OpenAPI document gives each answer, and the fields the pages rely on: a field
renamed in the contract (dataset_name -> dataset, top-level totals ->
pagination) fails here, not in a browser."""

import re
from pathlib import Path

import pytest

from gateway.app import ENDPOINTS
from gateway.openapi import document

TYPES = Path(__file__).resolve().parents[2] / "gateway" / "web" / "src" / "types.ts"
CONFIGURE = TYPES.parent / "configure.ts"


def _interfaces(source: str) -> dict[str, set[str]]:
    """Each ``export interface Name [extends Base] { field: ...; }`` as its field names, inherited ones included."""
    found: dict[str, tuple[str | None, set[str]]] = {}
    for match in re.finditer(r"export interface (\w+)(?: extends (\w+))? \{\n(.*?)\n\}", source, re.S):
        name, base, body = match.groups()
        fields = set(re.findall(r"^  (\w+)\??:", body, re.M))
        found[name] = (base, fields)

    def resolved(name: str) -> set[str]:
        base, fields = found[name]
        return fields | (resolved(base) if base else set())

    return {name: resolved(name) for name in found}


def _unwrap(schema: dict) -> dict:
    """The object or array inside a nullable ``anyOf``."""
    for option in schema.get("anyOf", []):
        if option.get("type") != "null":
            return _unwrap(option)
    return schema


def _data(path: str, method: str) -> dict:
    operation = document(ENDPOINTS)["paths"][path][method]
    answer = next(v for k, v in operation["responses"].items() if k.startswith("2"))
    return _unwrap(answer["content"]["application/json"]["schema"]["properties"]["data"])


def _at(schema: dict, *keys: str) -> dict:
    for key in keys:
        schema = _unwrap(schema)
        schema = schema["items"] if key == "[]" else schema["properties"][key]
    return _unwrap(schema)


# interface -> (path, method, where in data), and the fields the pages must find there.
ANSWERS = {
    "Job": (("/api/jobs/{id}", "get", ("job",)), {"dataset", "status", "artifact_id", "progress"}),
    "JobDetail": (("/api/jobs/{id}", "get", ()), {"job", "metrics", "cost_records"}),
    "CreatedJob": (("/api/jobs", "post", ()), {"job"}),
    "JobList": (("/api/jobs", "get", ()), {"jobs", "pagination"}),
    "Hyperparameters": (("/api/jobs/{id}", "get", ("job", "hyperparameters")), {"learning_rate", "epochs"}),
    "MetricPoint": (("/api/jobs/{id}", "get", ("metrics", "[]")), {"step", "training_loss"}),
    "CostRecord": (("/api/jobs/{id}", "get", ("cost_records", "[]")), {"cost_type", "amount", "job_id"}),
    "Dataset": (("/api/datasets/{id}", "get", ("dataset",)), {"status", "validation_errors"}),
    "DatasetList": (("/api/datasets", "get", ()), {"datasets", "pagination"}),
    "Pagination": (("/api/datasets", "get", ("pagination",)), {"page", "limit", "total", "totalPages"}),
    "DatasetRef": (("/api/jobs/{id}", "get", ("job", "dataset")), {"id", "name"}),
    "Model": (("/api/models/{id}", "get", ("model",)), {"artifacts", "quality_metrics"}),
    "ListedModel": (("/api/models", "get", ("models", "[]")), {"dataset"}),
    "ModelList": (("/api/models", "get", ()), {"models", "pagination"}),
    "CostSummary": (("/api/costs", "get", ()), {"total", "records", "record_count", "by_day"}),
    "Budget": (("/api/budget", "get", ()), {"amount", "committed"}),
    "Notification": (("/api/notifications", "get", ("notifications", "[]")), {"read", "action_url"}),
    "NotificationList": (("/api/notifications", "get", ()), {"notifications", "unread_count", "pagination"}),
    "GpuType": (("/api/gpu-types", "get", ("gpu_types", "[]")), {"type", "max_count"}),
    "Estimate": (("/api/jobs/estimate", "post", ()), {"estimated_cost", "training_details", "warnings"}),
    "DownloadUrls": (("/api/models/{id}/download", "post", ()), {"download_urls"}),
    "Generation": (("/api/models/{id}/generate", "post", ()), {"model_id", "results"}),
    "GenerationResult": (("/api/models/{id}/generate", "post", ("results", "[]")),
                         {"prompt", "completion", "base_completion"}),
}


@pytest.mark.parametrize("name", sorted(ANSWERS))
def test_each_type_names_only_what_the_document_gives(name):
    (path, method, where), needed = ANSWERS[name]
    declared = _interfaces(TYPES.read_text())[name]
    documented = set(_at(_data(path, method), *where)["properties"])
    assert declared <= documented, f"{name} declares fields the API does not send: {sorted(declared - documented)}"
    assert needed <= declared & documented


def test_the_job_request_is_what_the_create_body_takes():
    declared = _interfaces(CONFIGURE.read_text())["JobRequest"]
    body = document(ENDPOINTS)["paths"]["/api/jobs"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert declared <= set(body["properties"])
    assert set(body["required"]) <= declared
