"""Wiring of dataset_svc: database, the validator consumer and its child process, gRPC."""

from __future__ import annotations

import asyncio
from pathlib import Path

from brightrun.dataset.v1 import dataset_pb2, dataset_pb2_grpc
from services.common.config import Settings
from services.common.nats_access import DATASET_USAGE, DATASET_VALIDATOR
from services.common.runtime import ServiceRuntime
from services.common.storage import ObjectStorage
from services.dataset_svc.consumers import DatasetUsage, DatasetValidator
from services.dataset_svc.handlers import DatasetHandlers
from services.dataset_svc.validator_process import ValidatorProcess

MIGRATIONS = Path(__file__).parent / "migrations"


async def start(settings: Settings, *, address: str | None = None, schema: str = "dataset") -> ServiceRuntime:
    """Start the service; ``address`` defaults to ``settings.dataset_addr`` (tests pass port 0)."""
    storage = ObjectStorage.from_settings(settings)
    # The datasets bucket is this service's: it makes it (see ObjectStorage.ensure_bucket).
    await asyncio.to_thread(storage.ensure_bucket, settings.datasets_bucket, "BRIGHTRUN_DATASETS_BUCKET")
    runtime = await ServiceRuntime.open("dataset_svc", settings, schema=schema, migrations=MIGRATIONS)
    process = ValidatorProcess(settings, max_line_bytes=settings.dataset_max_line_bytes, model_dirs=settings.model_dirs)
    runtime.run_task("validator-process", lambda stopping: _close_when(stopping, process))
    validator = DatasetValidator(runtime.db, process)
    runtime.consume(
        **DATASET_VALIDATOR.wiring(),
        handler=validator.handle,
        # Validating 500 MB takes about two minutes; a shorter deadline would redeliver it mid-way.
        ack_wait=900.0,
    )
    runtime.consume(**DATASET_USAGE.wiring(), handler=DatasetUsage(runtime.db).handle)
    handlers = DatasetHandlers(runtime.db, storage, settings)
    await runtime.serve(
        address or settings.dataset_addr,
        [lambda server: dataset_pb2_grpc.add_DatasetServiceServicer_to_server(handlers, server)],
        [dataset_pb2.DESCRIPTOR.services_by_name["DatasetService"].full_name],
    )
    return runtime


async def _close_when(stopping: asyncio.Event, process: ValidatorProcess) -> None:
    """End the validator's child process when the service stops."""
    try:
        await stopping.wait()
    finally:
        process.close()
