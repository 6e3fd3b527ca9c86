"""Python SDK of the BrightRun HTTP API: ``Client``, ``AsyncClient``, typed models and ``BrightRunError``."""

from brightrun_client._core import RetryPolicy
from brightrun_client._endpoints import CreatedJob, Page, UploadTicket
from brightrun_client.aio import AsyncClient
from brightrun_client.client import Client
from brightrun_client.config import Config, load_config
from brightrun_client.errors import BrightRunError
from brightrun_client.models import (
    CostRecord,
    CostSummary,
    Dataset,
    DownloadUrl,
    Estimate,
    Job,
    JobDetail,
    MetricPoint,
    Model,
    Notification,
    Notifications,
    Preset,
    ValidationIssue,
)

__all__ = [
    "AsyncClient", "BrightRunError", "Client", "Config", "CostRecord", "CostSummary", "CreatedJob", "Dataset",
    "DownloadUrl", "Estimate", "Job", "JobDetail", "MetricPoint", "Model", "Notification", "Notifications", "Page",
    "Preset", "RetryPolicy", "UploadTicket", "ValidationIssue", "load_config",
]
