"""The webhook RPCs of BillingService: endpoints and their deliveries, scoped by the caller.

A mixin of BillingHandlers, which provides ``self._db`` and ``self._allow_http_webhooks``.
"""

from __future__ import annotations

from brightrun.billing.v1 import billing_pb2

from services.billing_svc import webhook_store
from services.billing_svc.messages import delivery_message, webhook_message
from services.billing_svc.webhooks import description_problems, event_type_problems, new_secret, url_problems
from services.common import idempotency
from services.common.db import Database
from services.common.errors import NotFound, field_errors
from services.common.grpc import rpc, user_id
from services.common.paging import canonical_uuid, parse_page

DEFAULT_PAGE_SIZE = 50


class WebhookHandlers:
    _db: Database
    _allow_http_webhooks: bool

    @rpc
    async def CreateWebhook(self, request, context):
        """Raises InvalidArgument naming each bad field, IdempotencyKeyReused for a request id sent with
        another body; the same request id and body answer with the first endpoint and its secret."""
        uid = user_id(context)
        if request.request_id:
            idempotency.check_request_id(request.request_id)
        fields = self._checked({
            "url": request.url,
            "event_types": list(dict.fromkeys(request.event_types)),
            "description": request.description,
            "enabled": request.enabled if request.HasField("enabled") else True,
        })
        fingerprint = idempotency.fingerprint(request) if request.request_id else None
        async with self._db.transaction() as conn:
            row = await webhook_store.insert_webhook(
                conn, uid, fields, new_secret(), request.request_id or None, fingerprint
            )
            if row is None:  # the request id was used before
                row = await webhook_store.webhook_by_request(conn, uid, request.request_id)
                idempotency.check_replay(row.request_fingerprint, request, "webhook")
        return billing_pb2.CreateWebhookResponse(webhook=webhook_message(row), secret=row.secret)

    @rpc
    async def ListWebhooks(self, request, context):
        """Newest first; raises InvalidArgument for a bad page size or token."""
        page = parse_page(request.page_size, request.page_token, default=DEFAULT_PAGE_SIZE,
                          keyset=webhook_store.WEBHOOK_ORDER)
        uid = user_id(context)
        async with self._db.read() as conn:
            rows = await webhook_store.list_webhooks(conn, uid, page)
            total = await webhook_store.webhook_count(conn, uid)
        return billing_pb2.ListWebhooksResponse(
            webhooks=[webhook_message(row) for row in rows[: page.limit]],
            next_page_token=webhook_store.WEBHOOK_ORDER.next_token(rows, page),
            total_size=total,
        )

    @rpc
    async def GetWebhook(self, request, context):
        """Raises NotFound for a missing or another user's endpoint."""
        async with self._db.read() as conn:
            row = await self._owned(conn, user_id(context), request.webhook_id)
        return billing_pb2.GetWebhookResponse(webhook=webhook_message(row))

    @rpc
    async def UpdateWebhook(self, request, context):
        """Changes the fields in update_mask; raises InvalidArgument naming a bad one or an unknown path,
        NotFound for a missing or another user's endpoint."""
        unknown = [path for path in request.update_mask.paths if path not in webhook_store.UPDATABLE]
        field_errors({"update_mask": [f"Cannot change {path!r}; change any of {', '.join(webhook_store.UPDATABLE)}"
                                      for path in unknown]})
        given = {
            "url": request.url,
            "event_types": list(dict.fromkeys(request.event_types)),
            "description": request.description,
            "enabled": request.enabled,
        }
        changes = self._checked({path: given[path] for path in request.update_mask.paths})
        uid = user_id(context)
        async with self._db.transaction() as conn:
            webhook_id = (await self._owned(conn, uid, request.webhook_id)).id
            row = await webhook_store.update_webhook(conn, uid, webhook_id, changes)
        return billing_pb2.UpdateWebhookResponse(webhook=webhook_message(row))

    @rpc
    async def DeleteWebhook(self, request, context):
        """Raises NotFound for a missing or another user's endpoint."""
        uid = user_id(context)
        async with self._db.transaction() as conn:
            await webhook_store.delete_webhook(conn, uid, (await self._owned(conn, uid, request.webhook_id)).id)
        return billing_pb2.DeleteWebhookResponse()

    @rpc
    async def ListWebhookDeliveries(self, request, context):
        """Newest first with their attempts; raises NotFound for another user's endpoint."""
        page = parse_page(request.page_size, request.page_token, default=DEFAULT_PAGE_SIZE,
                          keyset=webhook_store.DELIVERY_ORDER)
        async with self._db.read() as conn:
            webhook = await self._owned(conn, user_id(context), request.webhook_id)
            rows = await webhook_store.list_deliveries(conn, webhook.id, page)
            attempts = await webhook_store.attempts_of(conn, [row.id for row in rows[: page.limit]])
            total = await webhook_store.delivery_count(conn, webhook.id)
        return billing_pb2.ListWebhookDeliveriesResponse(
            deliveries=[delivery_message(row, attempts[row.id]) for row in rows[: page.limit]],
            next_page_token=webhook_store.DELIVERY_ORDER.next_token(rows, page),
            total_size=total,
        )

    @rpc
    async def RedeliverWebhook(self, request, context):
        """Raises NotFound for a missing delivery or another user's endpoint."""
        delivery_id = canonical_uuid(request.delivery_id)
        async with self._db.transaction() as conn:
            webhook = await self._owned(conn, user_id(context), request.webhook_id)
            row = await webhook_store.redeliver(conn, webhook.id, delivery_id) if delivery_id else None
            if row is None:
                raise NotFound(f"delivery {request.delivery_id!r} of webhook {request.webhook_id!r} not found")
            attempts = await webhook_store.attempts_of(conn, [row.id])
        return billing_pb2.RedeliverWebhookResponse(delivery=delivery_message(row, attempts[row.id]))

    def _checked(self, fields: dict) -> dict:
        """``fields`` (any of url, event_types, description, enabled) when valid; raises InvalidArgument naming
        each bad one."""
        checks = {
            "url": lambda url: url_problems(url, allow_http=self._allow_http_webhooks),
            "event_types": event_type_problems,
            "description": description_problems,
        }
        field_errors({name: checks[name](value) for name, value in fields.items() if name in checks})
        return fields

    @staticmethod
    async def _owned(conn, uid: str, webhook_id: str):
        """The caller's endpoint; raises NotFound for a malformed id, a missing or another user's endpoint."""
        canonical = canonical_uuid(webhook_id)
        row = await webhook_store.get_webhook(conn, uid, canonical) if canonical else None
        if row is None:
            raise NotFound(f"webhook {webhook_id!r} not found")
        return row
