"""Python SDK of the BrightRun HTTP API: ``Client``, ``AsyncClient``, typed models and ``BrightRunError``."""

from brightrun_client._core import RetryPolicy
from brightrun_client._endpoints import CreatedJob, CreatedWebhook, Page, UploadTicket
from brightrun_client.aio import AsyncClient
from brightrun_client.client import Client
from brightrun_client.config import Config, load_config
from brightrun_client.errors import BrightRunError
from brightrun_client.models import (
    Budget,
    CostRecord,
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
    ValidationIssue,
    Webhook,
)

__all__ = [
    "AsyncClient", "BrightRunError", "Budget", "Client", "Config", "CostRecord", "CostSummary", "CreatedJob",
    "CreatedWebhook", "Dataset", "DownloadUrl", "Estimate", "Job", "JobDetail", "MetricPoint", "Model", "ModelExport", "Notification",
    "Notifications", "Page", "Preset", "RetryPolicy", "UploadTicket", "ValidationIssue", "Webhook",
    "load_config",
]
