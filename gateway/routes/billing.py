"""``/api/costs``, ``/api/budget`` and ``/api/notifications`` (FR-6.1, FR-6.2)."""

from __future__ import annotations

from starlette.requests import Request

from brightrun.billing.v1 import billing_pb2
from gateway.convert import message_to_json
from gateway.declare import PAGINATION, Body, Endpoint, Param, page_params
from gateway.http import Page, caller, path_id
from gateway.schema import array, message_schema, obj

BUDGET_BODY = Body(billing_pb2.SetBudgetRequest, required=("amount",), ranges={"amount": (0, 100_000_000)})


async def get_costs(request: Request):
    """``?period=week|month|quarter|year`` (default month) or ``?start_date=&end_date=`` -> the cost summary.

    Carries the summary's fields (``records`` among them) and, for clients
    written against FR-6.1, the same numbers under the spec's names
    total_cost, cost_by_type and chart_data.
    """
    api = caller(request)
    query = request.query_params
    message = billing_pb2.GetCostSummaryRequest(
        period=query.get("period", ""), start_date=query.get("start_date", ""), end_date=query.get("end_date", "")
    )
    summary = message_to_json(await api(api.stubs.billing.GetCostSummary, message))
    aliases = {"total_cost": summary["total"], "cost_by_type": summary["by_type"], "chart_data": summary["by_day"]}
    return api.ok({**summary, **aliases})


async def get_budget(request: Request):
    """-> ``{amount, month, spent, committed, remaining}`` in dollars; amount and remaining null without a budget."""
    api = caller(request)
    reply = await api(api.stubs.billing.GetBudget, billing_pb2.GetBudgetRequest())
    return api.ok(message_to_json(reply.budget))


async def set_budget(request: Request):
    """``{"amount": dollars}`` (0 or more) -> the budget as GET returns it; 400 naming ``amount`` otherwise."""
    api = caller(request)
    message = BUDGET_BODY.parse(await request.body())
    reply = await api(api.stubs.billing.SetBudget, message)
    return api.ok(message_to_json(reply.budget))


async def list_notifications(request: Request):
    """``?unread=true&page=&limit=20`` -> ``{notifications, unread_count, pagination}``, newest first."""
    api = caller(request)
    page = Page.from_query(request, default_limit=20)
    message = billing_pb2.ListNotificationsRequest(
        unread_only=request.query_params.get("unread") == "true", **page.request_fields()
    )
    reply = await page.fetch(api, api.stubs.billing.ListNotifications, message)
    return api.ok({
        "notifications": [message_to_json(n) for n in reply.notifications],
        "unread_count": reply.unread_count,
        "pagination": page.pagination(reply.total_size, reply.next_page_token),
    })


async def mark_notification_read(request: Request):
    api = caller(request)
    message = billing_pb2.MarkNotificationReadRequest(notification_id=path_id(request))
    reply = await api(api.stubs.billing.MarkNotificationRead, message)
    return api.ok({"notification": message_to_json(reply.notification)})


async def mark_all_notifications_read(request: Request):
    api = caller(request)
    reply = await api(api.stubs.billing.MarkAllNotificationsRead, billing_pb2.MarkAllNotificationsReadRequest())
    return api.ok({"updated_count": reply.updated_count})


_SUMMARY = message_schema(billing_pb2.GetCostSummaryResponse.DESCRIPTOR)
_BUDGET = message_schema(billing_pb2.Budget.DESCRIPTOR)
_NOTIFICATION = message_schema(billing_pb2.Notification.DESCRIPTOR)

ENDPOINTS = (
    Endpoint("GET", "/api/costs", get_costs, "The caller's costs over a period",
             obj(**_SUMMARY["properties"], total_cost=_SUMMARY["properties"]["total"],
                 cost_by_type=_SUMMARY["properties"]["by_type"], chart_data=_SUMMARY["properties"]["by_day"]),
             params=(Param("period", {"type": "string", "enum": ["week", "month", "quarter", "year"]},
                           "The period ending now; default month"),
                     Param("start_date", {"type": "string", "format": "date"},
                           "With end_date: the UTC days from start_date to end_date, instead of the period"),
                     Param("end_date", {"type": "string", "format": "date"}, "Last day included, with start_date"))),
    Endpoint("GET", "/api/budget", get_budget, "The monthly budget and what is spent and committed", _BUDGET),
    Endpoint("PUT", "/api/budget", set_budget, "Set the monthly budget in dollars", _BUDGET, body=BUDGET_BODY),
    Endpoint("GET", "/api/notifications", list_notifications, "The caller's notifications, newest first",
             obj(notifications=array(_NOTIFICATION), unread_count={"type": "integer"}, pagination=PAGINATION),
             params=(Param("unread", {"type": "string", "enum": ["true", "false"]}, "true: unread only"),
                     *page_params(20))),
    Endpoint("POST", "/api/notifications/read-all", mark_all_notifications_read, "Mark every notification read",
             obj(updated_count={"type": "integer"})),
    Endpoint("PATCH", "/api/notifications/{id}/read", mark_notification_read, "Mark a notification read",
             obj(notification=_NOTIFICATION)),
)
