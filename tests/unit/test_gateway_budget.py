"""``GET/PUT /api/budget`` and the budget refusal of ``POST /api/jobs``, against
in-test gRPC services: body validation naming the field, the caller's scope,
409 with the numbers. No database."""

import json
import uuid

import grpc
import httpx
import pytest_asyncio

from gateway_kit import gateway_settings
from brightrun.billing.v1 import billing_pb2, billing_pb2_grpc
from brightrun.job.v1 import job_pb2, job_pb2_grpc
from gateway.app import create_app
from gateway.auth import mint_token
from gateway.http import Caller
from gateway.routes.job_events import format_event
from services.billing_svc.budget import budget_cents
from services.common.errors import BudgetExceeded
from services.common.grpc import rpc, user_id

SECRET = "budget-route-test-secret-long-enough"


class FakeBilling(billing_pb2_grpc.BillingServiceServicer):
    def __init__(self):
        self.budgets: dict[str, float] = {}

    def _budget(self, uid: str) -> billing_pb2.Budget:
        budget = billing_pb2.Budget(month="2026-12-01", spent=1.5)
        if uid in self.budgets:
            budget.amount = self.budgets[uid]
            budget.remaining = self.budgets[uid] - 1.5
        return budget

    @rpc
    async def GetBudget(self, request, context):
        return billing_pb2.GetBudgetResponse(budget=self._budget(user_id(context)))

    @rpc
    async def SetBudget(self, request, context):
        self.budgets[user_id(context)] = budget_cents(request.amount) / 100
        return billing_pb2.SetBudgetResponse(budget=self._budget(user_id(context)))


class OverBudgetJobs(job_pb2_grpc.JobServiceServicer):
    @rpc
    async def CreateJob(self, request, context):
        details = {"estimated_cost": 12.5, "remaining": 3.0, "budget": 20.0}
        raise BudgetExceeded("The job's estimated cost exceeds your remaining monthly budget", details)


@pytest_asyncio.fixture(loop_scope="session")
async def client():
    server = grpc.aio.server()
    billing_pb2_grpc.add_BillingServiceServicer_to_server(FakeBilling(), server)
    job_pb2_grpc.add_JobServiceServicer_to_server(OverBudgetJobs(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    address = f"127.0.0.1:{port}"
    app = create_app(gateway_settings(BRIGHTRUN_JWT_SECRET=SECRET), dataset_addr=address, job_addr=address, artifact_addr=address,
                     billing_addr=address)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as http:
            yield http
    await server.stop(None)


def _auth(user: str) -> dict:
    return {"Authorization": f"Bearer {mint_token(user, SECRET)}"}


async def test_a_user_sets_and_reads_their_own_budget(client):
    owner, other = _auth(str(uuid.uuid4())), _auth(str(uuid.uuid4()))
    assert (await client.get("/api/budget")).status_code == 401
    reply = await client.put("/api/budget", json={"amount": 20}, headers=owner)
    assert reply.status_code == 200
    assert reply.json()["data"]["amount"] == 20.0 and reply.json()["data"]["remaining"] == 18.5
    assert (await client.get("/api/budget", headers=owner)).json()["data"]["amount"] == 20.0
    unset = (await client.get("/api/budget", headers=other)).json()["data"]
    assert unset["amount"] is None and unset["remaining"] is None and unset["spent"] == 1.5


async def test_a_bad_amount_is_a_400_naming_it(client):
    owner = _auth(str(uuid.uuid4()))
    for body in ({}, {"amount": "ten"}, {"amount": True}, {"amount": -5}, {"amount": 1e300}):
        reply = await client.put("/api/budget", json=body, headers=owner)
        assert reply.status_code == 400, body
        assert list(reply.json()["details"]) == ["amount"], body
    reply = await client.put("/api/budget", content=b'{"amount": NaN}', headers={**owner, "Content-Type": "application/json"})
    assert reply.status_code == 400


async def test_a_job_over_budget_is_a_409_with_the_numbers(client):
    body = {"dataset_id": str(uuid.uuid4()), "preset_id": "balanced", "gpu_config": {"type": "H100", "count": 1},
            "hyperparameters": {"learning_rate": 0.0002, "batch_size": 8, "epochs": 3, "rank": 16}}
    reply = await client.post("/api/jobs", json=body, headers=_auth(str(uuid.uuid4())))
    assert reply.status_code == 409
    assert reply.json()["details"] == {"estimated_cost": 12.5, "remaining": 3.0, "budget": 20.0}


def test_the_cost_so_far_reaches_the_jobs_sse_status_frames():
    update = job_pb2.WatchJobResponse(job=job_pb2.Job(id="j", current_cost=1.23, estimated_total_cost=9.5))
    frame = format_event(update, Caller("u", None))
    assert frame.startswith("event: status\n")
    data = json.loads(frame.split("data: ", 1)[1])
    assert (data["current_cost"], data["estimated_total_cost"]) == (1.23, 9.5)
