"""``/api/costs``, ``/api/budget`` and ``/api/notifications`` (FR-6.1, FR-6.2)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Route

from brightrun.billing.v1 import billing_pb2
from gateway.convert import json_to_message, message_to_json, parse_json_object
from gateway.http import MAX_LIMIT, caller, int_param, ok, path_id


async def get_costs(request: Request):
    """``?period=week|month|quarter|year`` (default month) -> the cost summary.

    Carries the summary's fields and, for clients written against FR-6.1, the
    same numbers under the spec's names total_cost, cost_by_type and chart_data.
    """
    api = caller(request)
    message = billing_pb2.GetCostSummaryRequest(period=request.query_params.get("period", ""))
    summary = message_to_json(await api(api.stubs.billing.GetCostSummary, message))
    aliases = {"total_cost": summary["total"], "cost_by_type": summary["by_type"], "chart_data": summary["by_day"]}
    return ok({**summary, **aliases})


async def get_budget(request: Request):
    """-> ``{amount, month, spent, committed, remaining}`` in dollars; amount and remaining null without a budget."""
    api = caller(request)
    reply = await api(api.stubs.billing.GetBudget, billing_pb2.GetBudgetRequest())
    return ok(message_to_json(reply.budget))


async def set_budget(request: Request):
    """``{"amount": dollars}`` (0 or more) -> the budget as GET returns it; 400 naming ``amount`` otherwise."""
    api = caller(request)
    body = parse_json_object(await request.body())
    message = json_to_message(body, billing_pb2.SetBudgetRequest, required=("amount",))
    reply = await api(api.stubs.billing.SetBudget, message)
    return ok(message_to_json(reply.budget))


async def list_notifications(request: Request):
    """``?unread=true&limit=20`` -> ``{notifications, unread_count}``, newest first."""
    api = caller(request)
    message = billing_pb2.ListNotificationsRequest(
        unread_only=request.query_params.get("unread") == "true", page_size=int_param(request, "limit", 20, maximum=MAX_LIMIT)
    )
    reply = await api(api.stubs.billing.ListNotifications, message)
    return ok({"notifications": [message_to_json(n) for n in reply.notifications], "unread_count": reply.unread_count})


async def mark_notification_read(request: Request):
    api = caller(request)
    message = billing_pb2.MarkNotificationReadRequest(notification_id=path_id(request))
    reply = await api(api.stubs.billing.MarkNotificationRead, message)
    return ok({"notification": message_to_json(reply.notification)})


async def mark_all_notifications_read(request: Request):
    api = caller(request)
    reply = await api(api.stubs.billing.MarkAllNotificationsRead, billing_pb2.MarkAllNotificationsReadRequest())
    return ok({"updated_count": reply.updated_count})


ROUTES = (
    Route("/api/costs", get_costs, methods=["GET"]),
    Route("/api/budget", get_budget, methods=["GET"]),
    Route("/api/budget", set_budget, methods=["PUT"]),
    Route("/api/notifications", list_notifications, methods=["GET"]),
    Route("/api/notifications/read-all", mark_all_notifications_read, methods=["POST"]),
    Route("/api/notifications/{id:uuid}/read", mark_notification_read, methods=["PATCH"]),
)
