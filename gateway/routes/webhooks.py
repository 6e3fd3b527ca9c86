"""``/api/webhooks``: the caller's webhook endpoints and their deliveries (README "Webhooks")."""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Route

from brightrun.billing.v1 import billing_pb2
from gateway.convert import json_to_message, message_to_json, parse_json_object
from gateway.errors import validation_error
from gateway.http import MAX_LIMIT, caller, idempotency_key, int_param, ok, path_id

_UPDATABLE = ("url", "event_types", "description", "enabled")


async def create_webhook(request: Request):
    """``{url, event_types, description?, enabled?}`` -> ``{webhook, secret}``, 201; the secret is shown only here.

    An ``Idempotency-Key`` header makes a retry answer with the first endpoint; 422 when the key came with
    another body. 400 names each bad field (an unknown event type by name).
    """
    api = caller(request)
    body = parse_json_object(await request.body())
    message = json_to_message(body, billing_pb2.CreateWebhookRequest, required=("url", "event_types"))
    message.request_id = idempotency_key(request, message.request_id)
    reply = await api(api.stubs.billing.CreateWebhook, message)
    return ok({"webhook": message_to_json(reply.webhook), "secret": reply.secret}, status=201)


async def list_webhooks(request: Request):
    """``?limit=N&page_token=T`` -> ``{webhooks, next_page_token}``, newest first."""
    api = caller(request)
    message = billing_pb2.ListWebhooksRequest(
        page_size=int_param(request, "limit", 50, maximum=MAX_LIMIT),
        page_token=request.query_params.get("page_token", ""),
    )
    reply = await api(api.stubs.billing.ListWebhooks, message)
    return ok({"webhooks": [message_to_json(w) for w in reply.webhooks], "next_page_token": reply.next_page_token})


async def get_webhook(request: Request):
    api = caller(request)
    reply = await api(api.stubs.billing.GetWebhook, billing_pb2.GetWebhookRequest(webhook_id=path_id(request)))
    return ok({"webhook": message_to_json(reply.webhook)})


async def update_webhook(request: Request):
    """Any of ``url, event_types, description, enabled``; the keys sent are the ones changed."""
    api = caller(request)
    body = parse_json_object(await request.body())
    changed = [name for name in _UPDATABLE if name in body]
    if not changed:
        raise validation_error({"body": [f"Send at least one of {', '.join(_UPDATABLE)}"]})
    required = [name for name in changed if name != "description"]  # null is no value for these
    message = json_to_message({name: body[name] for name in changed}, billing_pb2.UpdateWebhookRequest,
                              required=required)
    message.webhook_id = path_id(request)
    message.update_mask.paths.extend(changed)
    reply = await api(api.stubs.billing.UpdateWebhook, message)
    return ok({"webhook": message_to_json(reply.webhook)})


async def delete_webhook(request: Request):
    api = caller(request)
    await api(api.stubs.billing.DeleteWebhook, billing_pb2.DeleteWebhookRequest(webhook_id=path_id(request)))
    return ok({"deleted": True})


async def list_deliveries(request: Request):
    """``?limit=N&page_token=T`` -> ``{deliveries, next_page_token}``, newest first, each with its attempts."""
    api = caller(request)
    message = billing_pb2.ListWebhookDeliveriesRequest(
        webhook_id=path_id(request),
        page_size=int_param(request, "limit", 50, maximum=MAX_LIMIT),
        page_token=request.query_params.get("page_token", ""),
    )
    reply = await api(api.stubs.billing.ListWebhookDeliveries, message)
    deliveries = [message_to_json(d) for d in reply.deliveries]
    return ok({"deliveries": deliveries, "next_page_token": reply.next_page_token})


async def redeliver(request: Request):
    """Queues one more attempt now -> ``{delivery}``, 202."""
    api = caller(request)
    message = billing_pb2.RedeliverWebhookRequest(
        webhook_id=path_id(request), delivery_id=path_id(request, "delivery_id")
    )
    reply = await api(api.stubs.billing.RedeliverWebhook, message)
    return ok({"delivery": message_to_json(reply.delivery)}, status=202)


ROUTES = (
    Route("/api/webhooks", create_webhook, methods=["POST"]),
    Route("/api/webhooks", list_webhooks, methods=["GET"]),
    Route("/api/webhooks/{id:uuid}", get_webhook, methods=["GET"]),
    Route("/api/webhooks/{id:uuid}", update_webhook, methods=["PATCH"]),
    Route("/api/webhooks/{id:uuid}", delete_webhook, methods=["DELETE"]),
    Route("/api/webhooks/{id:uuid}/deliveries", list_deliveries, methods=["GET"]),
    Route("/api/webhooks/{id:uuid}/deliveries/{delivery_id:uuid}/redeliver", redeliver, methods=["POST"]),
)
