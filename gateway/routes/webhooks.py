"""``/api/webhooks``: the caller's webhook endpoints and their deliveries (README "Webhooks")."""

from __future__ import annotations

from starlette.requests import Request

from brightrun.billing.v1 import billing_pb2
from gateway.convert import message_to_json, parse_json_object
from gateway.declare import IDEMPOTENCY_KEY, PAGINATION, Body, Endpoint, page_params
from gateway.errors import validation_error
from gateway.http import Page, caller, idempotency_key, path_id
from gateway.schema import array, message_schema, obj

_UPDATABLE = ("url", "event_types", "description", "enabled")
CREATE_BODY = Body(billing_pb2.CreateWebhookRequest, required=("url", "event_types"), hidden=("request_id",))
UPDATE_BODY = Body(billing_pb2.UpdateWebhookRequest, hidden=("webhook_id", "update_mask"))


async def create_webhook(request: Request):
    """``{url, event_types, description?, enabled?}`` -> ``{webhook, secret}``, 201; the secret is shown only here.

    An ``Idempotency-Key`` header makes a retry answer with the first endpoint; 422 when the key came with
    another body. 400 names each bad field (an unknown event type by name).
    """
    api = caller(request)
    message = CREATE_BODY.parse(await request.body())
    message.request_id = idempotency_key(request, message.request_id)
    reply = await api(api.stubs.billing.CreateWebhook, message)
    return api.ok({"webhook": message_to_json(reply.webhook), "secret": reply.secret}, status=201)


async def list_webhooks(request: Request):
    """``?page=&limit=`` -> ``{webhooks, pagination}``, newest first."""
    api = caller(request)
    page = Page.from_query(request, default_limit=50)
    message = billing_pb2.ListWebhooksRequest(**page.request_fields())
    reply = await page.fetch(api, api.stubs.billing.ListWebhooks, message)
    return api.ok({"webhooks": [message_to_json(w) for w in reply.webhooks],
                   "pagination": page.pagination(reply.total_size, reply.next_page_token)})


async def get_webhook(request: Request):
    api = caller(request)
    reply = await api(api.stubs.billing.GetWebhook, billing_pb2.GetWebhookRequest(webhook_id=path_id(request)))
    return api.ok({"webhook": message_to_json(reply.webhook)})


async def update_webhook(request: Request):
    """Any of ``url, event_types, description, enabled``; the keys sent are the ones changed."""
    api = caller(request)
    raw = await request.body()
    message = UPDATE_BODY.parse(raw)
    sent = parse_json_object(raw)
    changed = [name for name in _UPDATABLE if name in sent]
    if not changed:
        raise validation_error({"body": [f"Send at least one of {', '.join(_UPDATABLE)}"]})
    # null clears a description; for the others it is no value at all.
    nulls = [name for name in changed if sent[name] is None and name != "description"]
    if nulls:
        raise validation_error({name: ["Must not be null; leave it out to keep its value"] for name in nulls})
    message.webhook_id = path_id(request)
    message.update_mask.paths.extend(changed)
    reply = await api(api.stubs.billing.UpdateWebhook, message)
    return api.ok({"webhook": message_to_json(reply.webhook)})


async def delete_webhook(request: Request):
    api = caller(request)
    await api(api.stubs.billing.DeleteWebhook, billing_pb2.DeleteWebhookRequest(webhook_id=path_id(request)))
    return api.ok({"deleted": True})


async def list_deliveries(request: Request):
    """``?page=&limit=`` -> ``{deliveries, pagination}``, newest first, each with its attempts."""
    api = caller(request)
    page = Page.from_query(request, default_limit=50)
    message = billing_pb2.ListWebhookDeliveriesRequest(webhook_id=path_id(request), **page.request_fields())
    reply = await page.fetch(api, api.stubs.billing.ListWebhookDeliveries, message)
    return api.ok({"deliveries": [message_to_json(d) for d in reply.deliveries],
                   "pagination": page.pagination(reply.total_size, reply.next_page_token)})


async def redeliver(request: Request):
    """Queues one more attempt now -> ``{delivery}``, 202."""
    api = caller(request)
    message = billing_pb2.RedeliverWebhookRequest(
        webhook_id=path_id(request), delivery_id=path_id(request, "delivery_id")
    )
    reply = await api(api.stubs.billing.RedeliverWebhook, message)
    return api.ok({"delivery": message_to_json(reply.delivery)}, status=202)


_WEBHOOK = message_schema(billing_pb2.Webhook.DESCRIPTOR)
_DELIVERY = message_schema(billing_pb2.WebhookDelivery.DESCRIPTOR)

ENDPOINTS = (
    Endpoint("POST", "/api/webhooks", create_webhook, "Register a webhook endpoint (its secret is shown only here)",
             obj(webhook=_WEBHOOK, secret={"type": "string"}), body=CREATE_BODY, params=(IDEMPOTENCY_KEY,),
             status=201),
    Endpoint("GET", "/api/webhooks", list_webhooks, "The caller's webhook endpoints, newest first",
             obj(webhooks=array(_WEBHOOK), pagination=PAGINATION), params=page_params(50)),
    Endpoint("GET", "/api/webhooks/{id}", get_webhook, "A webhook endpoint", obj(webhook=_WEBHOOK)),
    Endpoint("PATCH", "/api/webhooks/{id}", update_webhook, "Change the fields sent of a webhook endpoint",
             obj(webhook=_WEBHOOK), body=UPDATE_BODY),
    Endpoint("DELETE", "/api/webhooks/{id}", delete_webhook, "Delete a webhook endpoint and its deliveries",
             obj(deleted={"type": "boolean"})),
    Endpoint("GET", "/api/webhooks/{id}/deliveries", list_deliveries, "An endpoint's deliveries with their attempts",
             obj(deliveries=array(_DELIVERY), pagination=PAGINATION), params=page_params(50)),
    Endpoint("POST", "/api/webhooks/{id}/deliveries/{delivery_id}/redeliver", redeliver,
             "Send a delivery once more, now", obj(delivery=_DELIVERY), status=202),
)
