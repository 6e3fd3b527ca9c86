"""The API's endpoints, written once for both clients.

Each method builds a ``Call`` and hands it to ``self._send``: the sync client
answers with the parsed result, the async one with an awaitable of it.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from brightrun_client.models import (
    ApiObject,
    Budget,
    CostSummary,
    Dataset,
    DownloadUrl,
    Estimate,
    Job,
    JobDetail,
    MetricPoint,
    Model,
    ModelExport,
    Notification,
    Notifications,
    Preset,
    Webhook,
)

# How long a generation may take: a trainer agent may first load a large base model.
GENERATE_TIMEOUT = 1800.0

T = TypeVar("T")
M = TypeVar("M", bound=ApiObject)


@dataclass
class Call:
    method: str
    path: str
    parse: Callable[[dict], Any]
    params: dict[str, Any] | None = None
    json: Any = None
    headers: dict[str, str] | None = None
    # Seconds to wait for the answer; None: the client's timeout.
    timeout: float | None = None


@dataclass
class Page(Generic[T]):
    """One page of a list; ``has_more`` says whether another follows, ``next_cursor`` (when the API gives one)
    reads it: pass it as the list method's ``cursor``."""

    items: list[T]
    page: int
    limit: int
    total: int | None
    total_pages: int | None
    has_more: bool
    next_cursor: str | None = None


@dataclass
class UploadTicket:
    """``POST /api/datasets``: the dataset, still ``uploading``, and where to PUT its file."""

    dataset: Dataset
    upload_url: str
    storage_path: str = ""


@dataclass
class CreatedJob:
    """``POST /api/jobs``: the queued job and the server's warnings about it (e.g. no agent seen lately)."""

    job: Job
    warnings: list[str] = field(default_factory=list)


@dataclass
class CreatedWebhook:
    """``POST /api/webhooks``: the endpoint and its signing secret, which the server shows only this once."""

    webhook: Webhook
    secret: str


def _data(body: dict) -> Any:
    return body.get("data")


def _one(model: type[M], key: str | None = None) -> Callable[[dict], M]:
    def parse(body: dict) -> M:
        data = _data(body) or {}
        return model.from_dict(data.get(key) or {} if key else data)

    return parse


def _many(model: type[M], key: str) -> Callable[[dict], list[M]]:
    def parse(body: dict) -> list[M]:
        return [model.from_dict(item) for item in (_data(body) or {}).get(key) or []]

    return parse


def _page(model: type[M], key: str, page: int, limit: int) -> Callable[[dict], Page[M]]:
    """A list page, read from the pagination object ``{page, limit, total, totalPages, next_cursor}`` or the
    same keys at the top level, whichever is present. Where ``next_cursor`` is given, another page follows
    exactly when it is not null (a cursor page counts as page 1, so the page count says nothing then); else
    by the page count, and without one a full page means another may follow."""

    def parse(body: dict) -> Page[M]:
        data = _data(body) or {}
        meta = data.get("pagination") if isinstance(data.get("pagination"), dict) else data
        items = data.get(key) or []
        total_pages = meta.get("totalPages", meta.get("total_pages"))
        total_pages = total_pages if isinstance(total_pages, int) else None
        cursor = meta.get("next_cursor") if isinstance(meta.get("next_cursor"), str) else None
        if "next_cursor" in meta:
            has_more = cursor is not None
        else:
            has_more = page < total_pages if total_pages is not None else len(items) >= limit
        return Page([model.from_dict(item) for item in items], page, limit, meta.get("total"), total_pages, has_more,
                    cursor)

    return parse


def _list_params(page: int, limit: int, cursor: str | None, **filters: Any) -> dict[str, Any]:
    """A list's query: ``cursor`` (a previous page's ``next_cursor``) in place of ``page``, which the API
    does not read beside one."""
    return _params(page=None if cursor else page, limit=limit, cursor=cursor, **filters)


def _params(**values: Any) -> dict[str, Any]:
    """Query parameters without the unset ones; booleans as the API's ``true``."""
    return {k: ("true" if v is True else v) for k, v in values.items() if v is not None and v is not False}


def job_body(
    dataset_id: str,
    gpu: str,
    hyperparameters: Mapping[str, Any],
    preset_id: str | None = None,
    parent_model_id: str | None = None,
) -> dict[str, Any]:
    """The body of an estimate or a job; ``gpu`` is ``TYPE`` or ``TYPExN`` (``H100x8``); a job with
    ``parent_model_id`` continues training that model's adapter."""
    gpu_type, count = parse_gpu(gpu)
    body: dict[str, Any] = {
        "dataset_id": dataset_id,
        "gpu_config": {"type": gpu_type, "count": count},
        "hyperparameters": dict(hyperparameters),
    }
    if preset_id is not None:
        body["preset_id"] = preset_id
    if parent_model_id is not None:
        body["parent_model_id"] = parent_model_id
    return body


def parse_gpu(text: str) -> tuple[str, int]:
    """``"H100x8"`` -> ``("H100", 8)``, ``"CPU"`` -> ``("CPU", 1)``; raises ValueError for a bad count."""
    gpu_type, sep, count = text.rpartition("x")
    if sep and gpu_type and count.isdigit():
        return gpu_type, int(count)
    if not text:
        raise ValueError("a GPU type is required, e.g. H100 or A100x4")
    return text, 1


class Endpoints(ABC):
    """Every API call, and the iterators over every page of a list; the sync and async clients send."""

    @abstractmethod
    def _send(self, call: Call) -> Any:
        """The parsed answer to ``call`` (the async client: an awaitable of it)."""

    @abstractmethod
    def _paged(self, lister: Callable[..., Any], limit: int, filters: dict) -> Any:
        """Every item of ``lister``'s pages in turn, each page after the first read from the previous one's
        ``next_cursor`` (by page number from an API that gives none); the async client: an async iterator."""

    def iter_datasets(self, limit: int = 100, **filters):
        """Every dataset, page by page (``filters``: ``status``, ``search``). Pages follow ``next_cursor``:
        datasets created meanwhile are neither repeated nor make one skipped."""
        return self._paged(self.list_datasets, limit, filters)

    def iter_jobs(self, limit: int = 100, **filters):
        """Every job, page by page (``filters``: ``status``), following ``next_cursor``."""
        return self._paged(self.list_jobs, limit, filters)

    def iter_models(self, limit: int = 100, **filters):
        """Every model, page by page (``filters``: ``sort``), following ``next_cursor``."""
        return self._paged(self.list_models, limit, filters)

    def iter_webhooks(self, limit: int = 100):
        """Every webhook endpoint, page by page, following ``next_cursor``."""
        return self._paged(self.list_webhooks, limit, {})

    # Datasets

    def create_dataset(
        self,
        name: str,
        file_name: str,
        file_size: int,
        *,
        format: str | None = None,
        description: str | None = None,
        base_model: str | None = None,
        sha256: str | None = None,
    ):
        """Register a dataset; returns an ``UploadTicket`` whose ``upload_url`` takes the file (then confirm)."""
        body = {"name": name, "file_name": file_name, "file_size": file_size}
        extra = {"format": format, "description": description, "base_model": base_model, "sha256": sha256}
        body.update({k: v for k, v in extra.items() if v is not None})

        def parse(answer: dict) -> UploadTicket:
            data = _data(answer) or {}
            return UploadTicket(Dataset.from_dict(data.get("dataset") or {}), data.get("uploadUrl", ""),
                                data.get("storagePath", ""))

        return self._send(Call("POST", "/api/datasets", parse, json=body))

    def confirm_upload(self, dataset_id: str):
        return self._send(Call("POST", f"/api/datasets/{dataset_id}/confirm", _one(Dataset, "dataset")))

    def get_dataset(self, dataset_id: str):
        return self._send(Call("GET", f"/api/datasets/{dataset_id}", _one(Dataset, "dataset")))

    def delete_dataset(self, dataset_id: str):
        return self._send(Call("DELETE", f"/api/datasets/{dataset_id}", _one(Dataset, "dataset")))

    def revalidate_dataset(self, dataset_id: str, base_model: str | None = None):
        body = {"base_model": base_model} if base_model else {}
        return self._send(Call("POST", f"/api/datasets/{dataset_id}/revalidate", _one(Dataset, "dataset"), json=body))

    def list_datasets(self, page: int = 1, limit: int = 25, *, status: str | None = None, search: str | None = None,
                      cursor: str | None = None):
        """A page by number, or with ``cursor`` (a previous page's ``next_cursor``) the page after that one."""
        params = _list_params(page, limit, cursor, status=status, search=search)
        return self._send(Call("GET", "/api/datasets", _page(Dataset, "datasets", page, limit), params=params))

    # Jobs

    def list_presets(self):
        return self._send(Call("GET", "/api/jobs/presets", _many(Preset, "presets")))

    def list_gpu_types(self):
        return self._send(Call("GET", "/api/gpu-types", lambda body: (_data(body) or {}).get("gpu_types") or []))

    def estimate_job(self, dataset_id: str, gpu: str, hyperparameters: Mapping[str, Any]):
        body = job_body(dataset_id, gpu, hyperparameters)
        return self._send(Call("POST", "/api/jobs/estimate", _one(Estimate), json=body))

    def create_job(
        self,
        dataset_id: str,
        preset_id: str,
        gpu: str,
        hyperparameters: Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
        parent_model_id: str | None = None,
    ):
        """Create a job (continuing ``parent_model_id``'s adapter when given); returns a ``CreatedJob``. An ``Idempotency-Key`` (a fresh UUID unless given) makes
        the client's retries after a 429/503 answer with the one job the first attempt may have created."""
        headers = {"Idempotency-Key": idempotency_key or str(uuid.uuid4())}

        def parse(body: dict) -> CreatedJob:
            return CreatedJob(Job.from_dict((_data(body) or {}).get("job") or {}), list(body.get("warnings") or []))

        body = job_body(dataset_id, gpu, hyperparameters, preset_id, parent_model_id)
        return self._send(Call("POST", "/api/jobs", parse, json=body, headers=headers))

    def list_jobs(self, page: int = 1, limit: int = 10, *, status: str | None = None, cursor: str | None = None):
        """A page by number, or with ``cursor`` (a previous page's ``next_cursor``) the page after that one."""
        params = _list_params(page, limit, cursor, status=status)
        return self._send(Call("GET", "/api/jobs", _page(Job, "jobs", page, limit), params=params))

    def get_job(self, job_id: str, metrics_limit: int | None = None):
        """The job with its latest ``metrics_limit`` metric points (the API's default 500) and its cost records
        (a ``JobDetail``)."""
        params = _params(metrics_limit=metrics_limit)
        return self._send(Call("GET", f"/api/jobs/{job_id}", _one(JobDetail), params=params))

    def cancel_job(self, job_id: str):
        return self._send(Call("POST", f"/api/jobs/{job_id}/cancel", _one(Job, "job")))

    def list_metrics(self, job_id: str, after_step: int = 0, limit: int = 1000, *, before_step: int | None = None):
        """Metric points in step order: the first ``limit`` after ``after_step``, or with ``before_step`` (a
        detail's ``older_metrics_before_step``) the latest ``limit`` below it; page further back with the first
        returned point's step until a page comes back empty."""
        params = _params(after_step=after_step or None, limit=limit, before_step=before_step)
        return self._send(Call("GET", f"/api/jobs/{job_id}/metrics", _many(MetricPoint, "metrics"), params=params))

    # Models

    def list_models(self, page: int = 1, limit: int = 12, *, sort: str | None = None, cursor: str | None = None):
        """A page by number, or with ``cursor`` (a previous page's ``next_cursor``) the page after that one."""
        params = _list_params(page, limit, cursor, sort=sort)
        return self._send(Call("GET", "/api/models", _page(Model, "models", page, limit), params=params))

    def get_model(self, model_id: str):
        return self._send(Call("GET", f"/api/models/{model_id}", _one(Model, "model")))

    def delete_model(self, model_id: str):
        return self._send(Call("DELETE", f"/api/models/{model_id}", _one(Model, "model")))

    def download_urls(self, model_id: str, files: list[str] | None = None):
        """Presigned URLs of the adapter's files (all of them unless ``files`` names some)."""
        body = {"files": files} if files else {}
        parse = _many(DownloadUrl, "download_urls")
        return self._send(Call("POST", f"/api/models/{model_id}/download", parse, json=body))

    def generate(
        self,
        model_id: str,
        prompts: list[str] | None = None,
        conversations: list[list[Mapping[str, str]]] | None = None,
        max_new_tokens: int = 128,
        temperature: float = 0.0,
        seed: int | None = None,
        include_base: bool = False,
    ):
        """Sample from a trained model: ``{model_id, results: [{prompt, completion[, base_completion]}]}``.

        Send ``prompts`` (strings) or ``conversations`` (lists of ``{role, content}`` ending with the
        user's), 1 to 8. Greedy at temperature 0; ``include_base`` adds the base model's answer without
        the adapter. A trainer agent runs it: while none is free the server answers 503, which this
        client retries like any 503 before raising.
        """
        body: dict[str, Any] = {"max_new_tokens": max_new_tokens, "temperature": temperature,
                                "include_base": include_base}
        if prompts is not None:
            body["prompts"] = list(prompts)
        if conversations is not None:
            body["conversations"] = [[dict(m) for m in c] for c in conversations]
        if seed is not None:
            body["seed"] = seed
        return self._send(Call("POST", f"/api/models/{model_id}/generate", _data, json=body, timeout=GENERATE_TIMEOUT))

    def export_model(self, model_id: str, kind: str = "merged"):
        """Ask for an export (``merged``: the base model with the adapter merged in); returns the ``ModelExport``,
        queued, or the model's live one of that kind. Follow it with ``get_export``."""
        return self._send(Call("POST", f"/api/models/{model_id}/exports", _one(ModelExport, "export"),
                               json={"kind": kind}))

    def list_exports(self, model_id: str):
        return self._send(Call("GET", f"/api/models/{model_id}/exports", _many(ModelExport, "exports")))

    def get_export(self, model_id: str, export_id: str):
        """The export with, once completed, presigned ``download_urls`` of its files."""

        def parse(body: dict) -> ModelExport:
            data = _data(body) or {}
            return ModelExport.from_dict({**(data.get("export") or {}), "download_urls": data.get("download_urls") or [],
                                          "expires_at": data.get("expires_at")})

        return self._send(Call("GET", f"/api/models/{model_id}/exports/{export_id}", parse))

    # Billing

    def costs(self, period: str | None = None):
        """The cost summary of ``week``, ``month`` (the server's default), ``quarter`` or ``year``."""
        return self._send(Call("GET", "/api/costs", _one(CostSummary), params=_params(period=period)))

    def notifications(self, *, unread: bool = False, limit: int = 20):
        params = _params(unread=unread, limit=limit)
        return self._send(Call("GET", "/api/notifications", _one(Notifications), params=params))

    def mark_notification_read(self, notification_id: str):
        path = f"/api/notifications/{notification_id}/read"
        return self._send(Call("PATCH", path, _one(Notification, "notification")))

    def mark_all_notifications_read(self):
        """Returns how many notifications were marked read."""
        def parse(body: dict) -> int:
            return int((_data(body) or {}).get("updated_count") or 0)

        return self._send(Call("POST", "/api/notifications/read-all", parse))

    def budget(self):
        """This month's budget with what is spent and committed (a ``Budget``)."""
        return self._send(Call("GET", "/api/budget", _one(Budget)))

    def set_budget(self, amount: float):
        """Sets the monthly budget in dollars (0 or more); returns the ``Budget``."""
        return self._send(Call("PUT", "/api/budget", _one(Budget), json={"amount": amount}))

    # Webhooks

    def list_webhooks(self, page: int = 1, limit: int = 50, *, cursor: str | None = None):
        """A page by number, or with ``cursor`` (a previous page's ``next_cursor``) the page after that one."""
        params = _list_params(page, limit, cursor)
        return self._send(Call("GET", "/api/webhooks", _page(Webhook, "webhooks", page, limit), params=params))

    def create_webhook(
        self,
        url: str,
        event_types: list[str],
        *,
        description: str | None = None,
        idempotency_key: str | None = None,
    ):
        """Registers an endpoint; returns a ``CreatedWebhook`` whose ``secret`` verifies its deliveries.
        The ``Idempotency-Key`` (a fresh UUID unless given) makes a retried call answer with the same one."""
        body: dict[str, Any] = {"url": url, "event_types": list(event_types)}
        if description is not None:
            body["description"] = description

        def parse(answer: dict) -> CreatedWebhook:
            data = _data(answer) or {}
            return CreatedWebhook(Webhook.from_dict(data.get("webhook") or {}), data.get("secret") or "")

        headers = {"Idempotency-Key": idempotency_key or str(uuid.uuid4())}
        return self._send(Call("POST", "/api/webhooks", parse, json=body, headers=headers))

    def delete_webhook(self, webhook_id: str):
        def parse(body: dict) -> bool:
            return bool((_data(body) or {}).get("deleted"))

        return self._send(Call("DELETE", f"/api/webhooks/{webhook_id}", parse))
