"""Wiring of billing_svc: database, one event consumer per stream (in batches), the webhook sender, gRPC."""

from __future__ import annotations

from pathlib import Path

from brightrun.billing.v1 import billing_pb2, billing_pb2_grpc

from services.billing_svc.consumers import BATCH, BillingEvents
from services.billing_svc.handlers import BillingHandlers
from services.billing_svc.webhook_sender import WebhookSender
from services.common.config import Settings
from services.common.nats_access import BILLING_CONSUMERS
from services.common.runtime import ServiceRuntime

MIGRATIONS = Path(__file__).parent / "migrations"


async def start(settings: Settings, *, address: str | None = None, schema: str = "billing") -> ServiceRuntime:
    """Start the service; ``address`` defaults to ``settings.billing_addr`` (tests pass port 0)."""
    runtime = await ServiceRuntime.open("billing_svc", settings, schema=schema, migrations=MIGRATIONS)
    for consumer in BILLING_CONSUMERS:
        runtime.consume_batches(**consumer.wiring(), handler=BillingEvents(runtime.db, consumer.durable).handle_batch,
                                batch=BATCH)
    runtime.run_task("webhook-sender", WebhookSender(runtime.db, settings).run)
    handlers = BillingHandlers(runtime.db, allow_http_webhooks=settings.webhooks_allow_http)
    await runtime.serve(
        address or settings.billing_addr,
        [lambda server: billing_pb2_grpc.add_BillingServiceServicer_to_server(handlers, server)],
        [billing_pb2.DESCRIPTOR.services_by_name["BillingService"].full_name],
    )
    return runtime
