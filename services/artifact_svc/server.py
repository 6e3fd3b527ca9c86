"""Wiring of artifact_svc: database, the job.completed consumer, generation through NATS, gRPC."""

from __future__ import annotations

import asyncio
from pathlib import Path

from brightrun.artifact.v1 import artifact_pb2, artifact_pb2_grpc

from services.artifact_svc.consumers import ArtifactBuilder
from services.artifact_svc.exports import AbandonedExports, ExportReports
from services.artifact_svc.generation import Generator
from services.artifact_svc.handlers import ArtifactHandlers
from services.common.config import Settings
from services.common.nats_access import ARTIFACT_BUILDER, ARTIFACT_EXPORTS, MAX_DELIVERIES_ADVISORY
from services.common.runtime import ServiceRuntime
from services.common.grants import Granter
from services.common.storage import ObjectStorage

MIGRATIONS = Path(__file__).parent / "migrations"


async def start(settings: Settings, *, address: str | None = None, schema: str = "artifact") -> ServiceRuntime:
    """Start the service; ``address`` defaults to ``settings.artifact_addr`` (tests pass port 0)."""
    storage = ObjectStorage.from_settings(settings)
    # The models bucket (checkpoints, adapters, exports) is this service's: it makes it
    # (see ObjectStorage.ensure_bucket); agents write into it only by job_svc's grants.
    await asyncio.to_thread(storage.ensure_bucket, settings.models_bucket, "BRIGHTRUN_MODELS_BUCKET")
    runtime = await ServiceRuntime.open("artifact_svc", settings, schema=schema, migrations=MIGRATIONS)
    builder = ArtifactBuilder(runtime.db)
    runtime.consume(**ARTIFACT_BUILDER.wiring(), handler=builder.handle)
    runtime.consume(**ARTIFACT_EXPORTS.wiring(),
                    handler=ExportReports(runtime.db).handle)
    # Advisories are not durable: one sent while artifact_svc is down is missed (as in job_svc).
    await runtime.subscribe(MAX_DELIVERIES_ADVISORY, AbandonedExports(runtime.db, runtime.js).on_advisory)
    grants = Granter.from_settings(settings)
    generator = Generator(
        runtime.nc, runtime.js,
        timeout_seconds=settings.generate_timeout_seconds, per_user=settings.generate_concurrency_per_user,
        grants=grants,
    )
    handlers = ArtifactHandlers(
        runtime.db, storage, settings.download_url_seconds, generator, grants
    )
    await runtime.serve(
        address or settings.artifact_addr,
        [lambda server: artifact_pb2_grpc.add_ArtifactServiceServicer_to_server(handlers, server)],
        [artifact_pb2.DESCRIPTOR.services_by_name["ArtifactService"].full_name],
    )
    return runtime
