"""gRPC BillingService: translates requests to store calls, scoped by the caller."""

from __future__ import annotations

from datetime import datetime, timezone

from brightrun.billing.v1 import billing_pb2, billing_pb2_grpc

from services.billing_svc import budgets, store
from services.billing_svc.budget import budget_cents, estimate_cents
from services.billing_svc.costs import cost_window, summarize
from services.common.paging import canonical_uuid, parse_page
from services.billing_svc.messages import budget_message, cost_record_message, notification_message
from services.billing_svc.webhook_handlers import WebhookHandlers
from services.common.db import Database
from services.common.gpu_catalogue import CATALOGUE
from services.common.errors import NotFound, field_errors
from services.common.grpc import rpc, user_id


DEFAULT_PAGE_SIZE = 50
# The most records one cost summary carries (record_count counts them all).
SUMMARY_RECORDS = 1000


class BillingHandlers(WebhookHandlers, billing_pb2_grpc.BillingServiceServicer):
    def __init__(self, db: Database, *, allow_http_webhooks: bool = False):
        self._db = db
        self._allow_http_webhooks = allow_http_webhooks

    @rpc
    async def GetCostSummary(self, request, context):
        """Costs of the period ending now, or of start_date..end_date, with the records; raises
        InvalidArgument for an unknown period or a bad date."""
        now = datetime.now(timezone.utc)
        period, start, end = cost_window(request.period, request.start_date, request.end_date, now)
        async with self._db.read() as conn:
            rows = await store.costs_between(conn, user_id(context), start, end)
        summary = summarize((row.cost_type, float(row.amount), row.recorded_at) for row in rows)
        return billing_pb2.GetCostSummaryResponse(
            total=summary.total,
            by_type=summary.by_type,
            by_day=[billing_pb2.CostByDay(date=day, amount=amount) for day, amount in summary.by_day],
            period=period,
            record_count=summary.record_count,
            records=[cost_record_message(row) for row in rows[-SUMMARY_RECORDS:]],
        )

    @rpc
    async def ListCostRecords(self, request, context):
        """Newest first; raises InvalidArgument for a malformed job id, page size or token."""
        job_id = canonical_uuid(request.job_id) if request.job_id else None
        if request.job_id and job_id is None:
            field_errors({"job_id": [f"{request.job_id!r} is not a job id (a UUID)"]})
        page = parse_page(request.page_size, request.page_token, default=DEFAULT_PAGE_SIZE,
                          keyset=store.COST_RECORD_ORDER)
        async with self._db.statement() as conn:  # one statement: a job's detail asks for it on every read
            rows = await store.list_cost_records(conn, user_id(context), job_id, page)
        return billing_pb2.ListCostRecordsResponse(
            cost_records=[cost_record_message(row) for row in rows[: page.limit]],
            next_page_token=store.COST_RECORD_ORDER.next_token(rows, page),
        )

    @rpc
    async def ListNotifications(self, request, context):
        """Newest first, with the unread count; raises InvalidArgument for a bad page size or token."""
        page = parse_page(request.page_size, request.page_token, default=DEFAULT_PAGE_SIZE,
                          keyset=store.NOTIFICATION_ORDER)
        uid = user_id(context)
        async with self._db.read() as conn:
            rows = await store.list_notifications(conn, uid, request.unread_only, page)
            unread = await store.unread_count(conn, uid)
            total = await store.notification_count(conn, uid, request.unread_only)
        return billing_pb2.ListNotificationsResponse(
            notifications=[notification_message(row) for row in rows[: page.limit]],
            unread_count=unread,
            total_size=total,
            next_page_token=store.NOTIFICATION_ORDER.next_token(rows, page),
        )

    @rpc
    async def MarkNotificationRead(self, request, context):
        """Raises NotFound for a missing or another user's notification."""
        notification_id = canonical_uuid(request.notification_id)
        row = None
        if notification_id is not None:
            async with self._db.transaction() as conn:
                row = await store.mark_read(conn, user_id(context), notification_id)
        if row is None:
            raise NotFound(f"notification {request.notification_id!r} not found")
        return billing_pb2.MarkNotificationReadResponse(notification=notification_message(row))

    @rpc
    async def MarkAllNotificationsRead(self, request, context):
        async with self._db.transaction() as conn:
            updated = await store.mark_all_read(conn, user_id(context))
        return billing_pb2.MarkAllNotificationsReadResponse(updated_count=updated)

    @rpc
    async def GetBudget(self, request, context):
        async with self._db.read() as conn:
            month = await budgets.standing(conn, user_id(context), datetime.now(timezone.utc))
        return billing_pb2.GetBudgetResponse(budget=budget_message(month))

    @rpc
    async def SetBudget(self, request, context):
        """Raises InvalidArgument naming ``amount`` when it is negative, not finite or too large."""
        amount = budget_cents(request.amount)
        uid, now = user_id(context), datetime.now(timezone.utc)
        async with self._db.transaction() as conn:
            await store.set_budget(conn, uid, amount)
            # A budget lowered below this month's spending warrants its notices now.
            await budgets.notify_thresholds(conn, uid, now)
            month = await budgets.standing(conn, uid, now)
        return billing_pb2.SetBudgetResponse(budget=budget_message(month))

    @rpc
    async def CheckBudget(self, request, context):
        """Raises InvalidArgument naming ``estimated_cost`` when it is negative or not finite."""
        estimate = estimate_cents(request.estimated_cost)
        async with self._db.read() as conn:
            month = await budgets.standing(conn, user_id(context), datetime.now(timezone.utc))
        return billing_pb2.CheckBudgetResponse(allowed=month.allows(estimate), budget=budget_message(month))

    @rpc
    async def GetPrices(self, request, context):
        return billing_pb2.GetPricesResponse(
            gpu_types=[billing_pb2.GpuPrice(type=g.type, memory_gb=g.memory_gb, price_per_gpu_hour=g.price_per_gpu_hour)
                       for g in CATALOGUE.gpus.values()],
            storage_price_per_model=CATALOGUE.storage_price_per_model,
        )
