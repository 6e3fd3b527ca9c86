"""The gateway calling a real service (billing_svc on real PostgreSQL and NATS) over mutual TLS, both
wired by their own settings: the service's ``ServiceRuntime.serve`` and the gateway's channels take
``Settings.grpc_tls``; a gateway without a client certificate gets the service answered as unreachable."""

from __future__ import annotations

import dataclasses
import uuid

import httpx
import pytest_asyncio
from tls_kit import Authority

from gateway.app import create_app
from gateway.auth import mint_token
from services.billing_svc.server import start
from services.common.config import DEV_JWT_SECRET, GrpcTls


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def mtls(settings, tmp_path_factory):
    """billing_svc serving mutual TLS only; yields (its address, the CA, the gateway's client certificate)."""
    ca = Authority(tmp_path_factory.mktemp("pki"), "brightrun-ca")
    server, client = ca.issue("billing-svc", server=True), ca.issue("gateway", server=False)
    tls = GrpcTls(ca=ca.issued.cert, cert=server.cert, key=server.key, require_client_cert=True)
    runtime = await start(dataclasses.replace(settings, grpc_tls=tls), address="127.0.0.1:0")
    yield f"localhost:{runtime.port}", ca.issued.cert, client
    await runtime.stop()


async def _get_budget(settings, address: str, tls: GrpcTls) -> httpx.Response:
    gateway = dataclasses.replace(settings, jwt_secret=DEV_JWT_SECRET, grpc_tls=tls)
    app = create_app(gateway, billing_addr=address)
    token = mint_token(str(uuid.uuid4()), DEV_JWT_SECRET)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as http:
            return await http.get("/api/budget", headers={"Authorization": f"Bearer {token}"})


async def test_the_gateway_with_a_client_certificate_reaches_the_service(settings, mtls):
    address, ca, client = mtls
    reply = await _get_budget(settings, address, GrpcTls(ca=ca, client_cert=client.cert, client_key=client.key))
    assert reply.status_code == 200, reply.text
    assert reply.json()["success"] is True


async def test_the_gateway_without_a_client_certificate_is_refused_as_unreachable(settings, mtls):
    address, ca, _ = mtls
    reply = await _get_budget(settings, address, GrpcTls(ca=ca))
    assert reply.status_code == 503
    assert reply.json()["success"] is False
