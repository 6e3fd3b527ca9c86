"""Wiring of job_svc: database, trainer (in batches), artifact, budget, dataset and cost-record consumers, the live feed of each job to its watchers, the clock (cost ticks, queue alerts), the dataset_svc and billing_svc clients, gRPC."""

from __future__ import annotations

from pathlib import Path

from brightrun.artifact.v1 import artifact_pb2_grpc
from brightrun.billing.v1 import billing_pb2_grpc
from brightrun.dataset.v1 import dataset_pb2_grpc
from brightrun.job.v1 import job_pb2, job_pb2_grpc
from services.common.config import Settings
from services.common.grpc import channel
from services.common.runtime import ServiceRuntime
from services.common.nats_access import (JOB_ARTIFACTS, JOB_BUDGET, JOB_COSTS, JOB_DATASETS, JOB_TRAINER,
                                           MAX_DELIVERIES_ADVISORY)
from services.job_svc.consumers import AbandonedAssignments, ArtifactEvents, TrainerEvents
from services.job_svc.dataset_facts import DatasetFacts
from services.job_svc import gauges
from services.job_svc.budget_gate import BudgetGate
from services.job_svc.budget_stops import BudgetStops
from services.job_svc.clock import JobClock
from services.job_svc.cost_records import CostRecords
from services.job_svc.handlers import JobHandlers
from services.job_svc.live import LiveFeed

MIGRATIONS = Path(__file__).parent / "migrations"
# Trainer events applied in one transaction at most: hundreds keep a batch well inside its ack wait. Not
# more: 2,000 cut each point's CPU by about a fifth, but a burst of 1,000 jobs' points then waited for one
# transaction of all of them (publish -> SSE p50 1.7 s -> 2.8 s).
TRAINER_BATCH = 500
# Cost records kept by one statement at most: a job's arrive at most once a minute, a backfill by thousands.
COST_BATCH = 200


async def start(settings: Settings, *, address: str | None = None, schema: str = "job") -> ServiceRuntime:
    """Start the service; ``address`` defaults to ``settings.job_addr`` (tests pass port 0)."""
    runtime = await ServiceRuntime.open("job_svc", settings, schema=schema, migrations=MIGRATIONS)
    live = LiveFeed(runtime.nc)
    runtime.mirror_outbox(live.mirror)
    # One short transaction a batch: a delivery lost with a NATS outage comes back within 15 s, not a
    # minute, so a job's metric history has no gap for long.
    trainer = TrainerEvents(runtime.db, live)
    runtime.consume_batches(**JOB_TRAINER.wiring(), handler=trainer.handle_batch, batch=TRAINER_BATCH, ack_wait=15.0)
    runtime.consume(**JOB_ARTIFACTS.wiring(), handler=ArtifactEvents(runtime.db).handle)
    runtime.consume(**JOB_BUDGET.wiring(), handler=BudgetStops(runtime.db).handle)
    runtime.consume(**JOB_DATASETS.wiring(), handler=DatasetFacts(runtime.db).handle)
    runtime.consume_batches(**JOB_COSTS.wiring(), handler=CostRecords(runtime.db).handle_batch, batch=COST_BATCH)
    # Advisories are not durable: one sent while job_svc is down is missed (see the issue note).
    await runtime.subscribe(MAX_DELIVERIES_ADVISORY, AbandonedAssignments(runtime.db, runtime.js).on_advisory)
    clock = JobClock(runtime.db, settings)
    runtime.every("clock", clock.period, clock.sweep)
    runtime.every("job-gauges", gauges.SAMPLE_SECONDS, lambda: gauges.sample_jobs(runtime.db))
    datasets = dataset_pb2_grpc.DatasetServiceStub(channel(settings.dataset_addr, settings.grpc_tls))
    budget = BudgetGate(billing_pb2_grpc.BillingServiceStub(channel(settings.billing_addr, settings.grpc_tls)))
    artifacts = artifact_pb2_grpc.ArtifactServiceStub(channel(settings.artifact_addr, settings.grpc_tls))
    handlers = JobHandlers(runtime.db, settings, datasets, runtime.nc, budget, artifacts)
    await runtime.serve(
        address or settings.job_addr,
        [lambda server: job_pb2_grpc.add_JobServiceServicer_to_server(handlers, server)],
        [job_pb2.DESCRIPTOR.services_by_name["JobService"].full_name],
    )
    return runtime
