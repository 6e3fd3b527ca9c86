"""Calls between real processes' wiring over mutual TLS, each side configured by ``Settings.grpc_tls``
alone: the gateway to billing_svc (on real PostgreSQL and NATS), its ``ServiceRuntime.serve`` serving
TLS only; a gateway without a client certificate gets the service answered as unreachable. And
job_svc to dataset_svc's port: job_svc's channels present its client certificate."""

from __future__ import annotations

import dataclasses
import uuid

import grpc
import httpx
import pytest
import pytest_asyncio
from brightrun.dataset.v1 import dataset_pb2_grpc
from brightrun.job.v1 import job_pb2, job_pb2_grpc
from tls_kit import Authority

from gateway.app import create_app
from gateway.auth import mint_token
from services.billing_svc.server import start
from services.common.config import DEV_JWT_SECRET, GrpcTls
from services.common.errors import NotFound
from services.common.grpc import as_user, channel, create_server, rpc
from services.job_svc.server import start as start_jobs


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def mtls(settings, tmp_path_factory):
    """billing_svc serving mutual TLS only; yields (its address, the CA, the gateway's client certificate)."""
    ca = Authority(tmp_path_factory.mktemp("pki"), "brightrun-ca")
    server, client = ca.issue("billing-svc", server=True), ca.issue("gateway", client=True)
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


class Datasets(dataset_pb2_grpc.DatasetServiceServicer):
    """Knows no dataset, and counts the calls that reached it."""

    calls = 0

    @rpc
    async def GetDataset(self, request, context):
        Datasets.calls += 1
        raise NotFound("Dataset not found")


async def test_job_svc_calls_another_service_with_its_client_certificate(settings, tmp_path):
    ca = Authority(tmp_path, "brightrun-ca")
    datasets, jobs = ca.issue("dataset-svc", server=True), ca.issue("job-svc", server=True, client=True)
    required = GrpcTls(ca=ca.issued.cert, cert=datasets.cert, key=datasets.key, require_client_cert=True)
    server, port, _ = create_server(
        "127.0.0.1:0", [lambda s: dataset_pb2_grpc.add_DatasetServiceServicer_to_server(Datasets(), s)], [], required)
    await server.start()
    job_tls = GrpcTls(ca=ca.issued.cert, cert=jobs.cert, key=jobs.key, client_cert=jobs.cert, client_key=jobs.key,
                      require_client_cert=True)
    runtime = await start_jobs(dataclasses.replace(settings, grpc_tls=job_tls, dataset_addr=f"localhost:{port}"),
                               address="127.0.0.1:0")
    try:
        async with channel(f"localhost:{runtime.port}", job_tls) as ch:
            request = job_pb2.EstimateJobRequest(dataset_id=str(uuid.uuid4()), preset_id="fast",
                                                 gpu_config=job_pb2.GpuConfig(type="CPU", count=1))
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await job_pb2_grpc.JobServiceStub(ch).EstimateJob(request, metadata=as_user(str(uuid.uuid4())),
                                                                  timeout=20)
    finally:
        await runtime.stop()
        await server.stop(None)
    # dataset_svc's answer came back through job_svc: the handshake with the client certificate went through.
    assert info.value.code() == grpc.StatusCode.NOT_FOUND and Datasets.calls == 1
