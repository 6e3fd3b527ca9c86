"""``/api/webhooks`` against an in-test BillingService: the requests the routes
build (Idempotency-Key, the PATCH body's keys as the update mask, path ids),
the answers' bodies and statuses. No database."""

import uuid

import grpc
import httpx
import pytest_asyncio

from gateway_kit import gateway_settings
from brightrun.billing.v1 import billing_pb2, billing_pb2_grpc
from gateway.app import create_app
from gateway.auth import mint_token
from services.billing_svc.webhooks import event_type_problems
from services.common.errors import NotFound, field_errors
from services.common.grpc import rpc, user_id

SECRET = "webhook-route-test-secret-long-enough"
OWNER = str(uuid.uuid4())
HOOK = str(uuid.uuid4())


class FakeBilling(billing_pb2_grpc.BillingServiceServicer):
    def __init__(self):
        self.seen: list[tuple[str, object]] = []

    def _hook(self, uid: str, webhook_id: str) -> billing_pb2.Webhook:
        if (uid, webhook_id) != (OWNER, HOOK):
            raise NotFound("webhook not found")
        return billing_pb2.Webhook(id=HOOK, user_id=OWNER, url="https://example.com/h", event_types=["job.failed"])

    @rpc
    async def CreateWebhook(self, request, context):
        self.seen.append((user_id(context), request))
        field_errors({"event_types": event_type_problems(list(request.event_types))})
        webhook = billing_pb2.Webhook(id=HOOK, user_id=user_id(context), url=request.url,
                                      event_types=request.event_types, enabled=True)
        return billing_pb2.CreateWebhookResponse(webhook=webhook, secret="whsec_c2VjcmV0")

    @rpc
    async def GetWebhook(self, request, context):
        return billing_pb2.GetWebhookResponse(webhook=self._hook(user_id(context), request.webhook_id))

    @rpc
    async def UpdateWebhook(self, request, context):
        self.seen.append((user_id(context), request))
        return billing_pb2.UpdateWebhookResponse(webhook=self._hook(user_id(context), request.webhook_id))

    @rpc
    async def RedeliverWebhook(self, request, context):
        self.seen.append((user_id(context), request))
        self._hook(user_id(context), request.webhook_id)
        attempt = billing_pb2.WebhookAttempt(status_code=500, duration_ms=12)
        delivery = billing_pb2.WebhookDelivery(id=request.delivery_id, webhook_id=HOOK, status="pending",
                                               attempts=[attempt, billing_pb2.WebhookAttempt(error="refused")])
        return billing_pb2.RedeliverWebhookResponse(delivery=delivery)


@pytest_asyncio.fixture(loop_scope="session")
async def gateway():
    server = grpc.aio.server()
    fake = FakeBilling()
    billing_pb2_grpc.add_BillingServiceServicer_to_server(fake, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    app = create_app(gateway_settings(BRIGHTRUN_JWT_SECRET=SECRET), billing_addr=f"127.0.0.1:{port}")
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as http:
            yield http, fake
    await server.stop(None)


def _auth(user: str = OWNER, **headers) -> dict:
    return {"Authorization": f"Bearer {mint_token(user, SECRET)}", **headers}


async def test_create_passes_the_body_and_idempotency_key_and_shows_the_secret(gateway):
    http, fake = gateway
    body = {"url": "https://example.com/h", "event_types": ["job.failed"], "description": "ops", "enabled": False}
    reply = await http.post("/api/webhooks", json=body, headers=_auth(**{"Idempotency-Key": "k-1"}))
    assert reply.status_code == 201
    data = reply.json()["data"]
    assert data["secret"] == "whsec_c2VjcmV0" and data["webhook"]["event_types"] == ["job.failed"]
    uid, request = fake.seen[-1]
    assert uid == OWNER
    assert (request.url, request.description, request.enabled, request.request_id) == (
        "https://example.com/h", "ops", False, "k-1"
    )


async def test_create_names_missing_fields_and_an_unknown_event_type(gateway):
    http, fake = gateway
    calls = len(fake.seen)
    reply = await http.post("/api/webhooks", json={"description": "x"}, headers=_auth())
    assert reply.status_code == 400 and set(reply.json()["details"]) == {"url", "event_types"}
    assert len(fake.seen) == calls  # refused before any service call
    reply = await http.post("/api/webhooks", json={"url": "https://e.com", "event_types": ["job.exploded"]},
                            headers=_auth())
    assert reply.status_code == 400
    assert "'job.exploded'" in reply.json()["details"]["event_types"][0]


async def test_patch_changes_only_the_keys_sent(gateway):
    http, fake = gateway
    reply = await http.patch(f"/api/webhooks/{HOOK}", json={"enabled": False, "description": None}, headers=_auth())
    assert reply.status_code == 200 and reply.json()["data"]["webhook"]["id"] == HOOK
    _, request = fake.seen[-1]
    assert list(request.update_mask.paths) == ["description", "enabled"]
    assert (request.webhook_id, request.enabled, request.description) == (HOOK, False, "")
    reply = await http.patch(f"/api/webhooks/{HOOK}", json={"secret": "mine"}, headers=_auth())
    assert reply.status_code == 400 and "secret" in reply.json()["details"]
    reply = await http.patch(f"/api/webhooks/{HOOK}", json={}, headers=_auth())
    assert reply.status_code == 400 and "enabled" in reply.json()["details"]["body"][0]
    reply = await http.patch(f"/api/webhooks/{HOOK}", json={"url": None}, headers=_auth())
    assert reply.status_code == 400 and list(reply.json()["details"]) == ["url"]


async def test_another_users_webhook_is_404_and_a_malformed_id_400(gateway):
    http, _ = gateway
    assert (await http.get(f"/api/webhooks/{HOOK}", headers=_auth())).status_code == 200
    assert (await http.get(f"/api/webhooks/{HOOK}", headers=_auth(str(uuid.uuid4())))).status_code == 404
    malformed = await http.get("/api/webhooks/not-an-id", headers=_auth())
    assert malformed.status_code == 400 and "UUID" in malformed.json()["details"]["id"][0]


async def test_redeliver_is_accepted_with_the_delivery_and_its_attempts(gateway):
    http, fake = gateway
    delivery = str(uuid.uuid4())
    reply = await http.post(f"/api/webhooks/{HOOK}/deliveries/{delivery}/redeliver", headers=_auth())
    assert reply.status_code == 202
    data = reply.json()["data"]["delivery"]
    assert (data["id"], data["status"]) == (delivery, "pending")
    assert [(a["status_code"], a["error"]) for a in data["attempts"]] == [(500, ""), (None, "refused")]
    _, request = fake.seen[-1]
    assert (request.webhook_id, request.delivery_id) == (HOOK, delivery)
