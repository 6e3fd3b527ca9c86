"""Each NATS identity (services.common.nats_access) against a real nats-server with the
authorization block generated from the table: what it is declared to do works without a
single permissions violation, and what belongs to another identity is refused."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import pytest_asyncio
from nats.js.api import AckPolicy, ConsumerConfig

from services.common import events, nats_access
from services.common.components import Nats
from services.common.config import read_settings
from services.common.nats_access import ADMIN, ANY, IDENTITIES
from services.common.startup import EXIT_STATUS, StartupError
from services.trainer_agent.agent import AgentSettings, TrainerAgent

ROOT = Path(__file__).resolve().parents[2]
AGENT = "trainer_agent"
# A concrete name and subject for the agents' consumer, declared for any durable of ASSIGN.
AGENT_DURABLE, AGENT_SUBJECT = "agents-CPU-1", "assign.CPU.1"


@pytest_asyncio.fixture(scope="module")
async def server(tmp_path_factory):
    nats = Nats(tmp_path_factory.mktemp("nats-access"))
    nats.start()
    admin, js = await events.connect(nats.url, "access-admin", ADMIN, nats.passwords[ADMIN])
    yield nats, js
    await admin.close()
    nats.stop()


@pytest.fixture
def violations(caplog):
    """The permissions violations the server reported to this test's connections (events.connect logs each)."""
    caplog.set_level(logging.ERROR, logger="services.common.events")
    return lambda: [r.getMessage().lower() for r in caplog.records if "permissions violation" in r.getMessage().lower()]


async def _as(nats: Nats, user: str):
    return await events.connect(nats.url, f"access-{user}", user, nats.passwords[user],
                                create_streams=user != AGENT)


def _concrete(subject: str) -> str:
    """A subject ``subject`` (a pattern) matches."""
    return subject.replace(">", "x").replace("*", "x1")


async def _count(js, stream: str) -> int:
    return (await js.stream_info(stream)).state.messages


async def _settle(nc) -> None:
    """Until the server has answered everything sent so far (a violation comes back before the PONG)."""
    await nc.flush()
    await asyncio.sleep(0.2)


async def test_a_connection_without_the_right_login_is_refused_in_one_line(server):
    nats, _ = server
    with pytest.raises(StartupError, match="refused a connection without BRIGHTRUN_NATS_USER"):
        await events.connect(nats.url, "anonymous")
    with pytest.raises(StartupError, match="refused user 'job_svc' \\(BRIGHTRUN_NATS_USER\\)"):
        await events.connect(nats.url, "wrong", "job_svc", "not-its-password")


@pytest.mark.parametrize("user", list(IDENTITIES))
async def test_each_identity_does_what_it_is_declared_to_without_a_violation(server, violations, user):
    nats, admin = server
    nc, js = await _as(nats, user)
    try:
        who = IDENTITIES[user]
        for consumer in who.consumes:
            durable = AGENT_DURABLE if consumer.durable == ANY else consumer.durable
            subjects = [AGENT_SUBJECT] if consumer.durable == ANY else list(consumer.subjects)
            await js.add_consumer(consumer.stream, ConsumerConfig(
                durable_name=durable, ack_policy=AckPolicy.EXPLICIT, filter_subjects=subjects))
            await js.consumer_info(consumer.stream, durable)
            await admin.publish(_concrete(subjects[0]), b"m", headers={"Nats-Msg-Id": str(uuid.uuid4())})
            sub = await js.pull_subscribe_bind(durable, stream=consumer.stream)
            [msg] = await sub.fetch(1, timeout=5)
            await msg.ack_sync()
            await sub.unsubscribe()
        for subject in who.publishes:
            if not subject.startswith("$"):
                await nc.publish(_concrete(subject), b"x")
        for subject in who.listens:
            await nc.subscribe(subject)
        await _settle(nc)
        assert violations() == []
    finally:
        await nc.close()


@pytest.mark.parametrize("subject", ["job.completed", "billing.budget_exceeded", "dataset.validated",
                                     "artifact.created", "assign.CPU.1", "live.job.x.points"])
async def test_the_agent_publishes_trainer_events_and_nothing_of_a_service(server, violations, subject):
    nats, admin = server
    nc, js = await _as(nats, AGENT)
    try:
        stream = next((s for s, (subjects, _) in events.STREAMS.items() if subject.split(".")[0] + ".>" in subjects),
                      None)
        before = await _count(admin, stream) if stream else 0
        trainer = await _count(admin, "TRAINER")
        await nc.publish(subject, b"forged")
        await nc.publish("trainer.metrics", b"its own")
        await _settle(nc)
        assert violations() == [f"nats ({nats.url} as {AGENT}): nats: permissions violation for publish to \"{subject.lower()}\""]
        if stream:
            assert await _count(admin, stream) == before
        assert await _count(admin, "TRAINER") == trainer + 1
    finally:
        await nc.close()


async def test_dataset_svc_cannot_publish_trainer_events(server, violations):
    nats, admin = server
    nc, _ = await _as(nats, "dataset_svc")
    try:
        before = await _count(admin, "TRAINER")
        await nc.publish("trainer.attempt.completed", b"forged")
        await _settle(nc)
        assert len(violations()) == 1 and "publish to \"trainer.attempt.completed\"" in violations()[0]
        assert await _count(admin, "TRAINER") == before
    finally:
        await nc.close()


async def test_an_identity_cannot_read_another_identitys_replies_or_pull_its_consumer(server, violations):
    nats, admin = server
    job_svc, job_js = await _as(nats, "job_svc")
    agent, agent_js = await _as(nats, AGENT)
    try:
        durable = nats_access.JOB_TRAINER.durable
        await job_js.add_consumer("TRAINER", ConsumerConfig(durable_name=durable, ack_policy=AckPolicy.EXPLICIT,
                                                            filter_subjects=list(nats_access.JOB_TRAINER.subjects)))
        # job_svc's replies: the agent may not listen where they come.
        spy = await agent.subscribe(f"{nats_access.inbox_prefix('job_svc')}.>")
        await _settle(agent)
        await admin._nc.publish(f"{nats_access.inbox_prefix('job_svc')}.reply", b"for job_svc only")
        with pytest.raises(TimeoutError):
            await spy.next_msg(timeout=0.5)
        # job_svc's consumer: the agent may neither read its state nor pull from it.
        sub = await agent_js.pull_subscribe_bind(durable, stream="TRAINER")
        with pytest.raises(TimeoutError):
            await sub.fetch(1, timeout=1)
        with pytest.raises(TimeoutError):
            await agent_js.consumer_info("TRAINER", durable, timeout=1)
        await _settle(agent)
        refused = violations()
        assert any("subscription to \"_inbox_job_svc.>\"" in v for v in refused)
        assert any(f"publish to \"$js.api.consumer.msg.next.trainer.{durable}\"" in v for v in refused)
        assert any(f"publish to \"$js.api.consumer.info.trainer.{durable}\"" in v for v in refused)
        await spy.unsubscribe()
    finally:
        await agent.close()
        await job_svc.close()


async def test_the_agent_code_takes_assignments_and_follows_cancellations_as_its_identity(server, violations, tmp_path):
    nats, admin = server
    settings = read_settings({
        "BRIGHTRUN_HOME": str(tmp_path), "BRIGHTRUN_NATS_URL": nats.url, **nats.login(AGENT),
        "BRIGHTRUN_DATABASE_URL": "postgresql+asyncpg://unused@127.0.0.1:1/unused",
        "BRIGHTRUN_S3_ENDPOINT": "http://127.0.0.1:1", "BRIGHTRUN_S3_ACCESS_KEY": "unused",
        "BRIGHTRUN_S3_SECRET_KEY": "unused", "BRIGHTRUN_DEFAULT_BASE_MODEL": "org/model",
        "BRIGHTRUN_INTERNAL_TOKEN_SECRET": "access-test-internal-token-secret-0123456789",
    })
    agent = TrainerAgent(settings, AgentSettings(agent_id="access", gpu_type="CPU", gpu_count=1, work_dir=tmp_path))
    cancelled = str(uuid.uuid4())
    event = events.new_event("job.cancelled", producer="test", user_id="u", subject_id=cancelled)
    await admin.publish(event.type, event.SerializeToString(), headers={"Nats-Msg-Id": event.event_id})
    nc, js = await _as(nats, AGENT)
    try:
        subscriptions = await asyncio.wait_for(agent._subscriptions(js), 10)
        assert cancelled in agent._cancelled
        for sub in subscriptions:
            await sub.unsubscribe()
        await _settle(nc)
        assert violations() == []
    finally:
        await nc.close()


def test_an_agent_with_a_wrong_password_exits_at_once_with_one_line(server, tmp_path):
    nats, _ = server
    env = {**os.environ, "BRIGHTRUN_HOME": str(tmp_path), "BRIGHTRUN_NATS_URL": nats.url,
           "BRIGHTRUN_NATS_USER": AGENT, "BRIGHTRUN_NATS_PASSWORD": "not-its-password",
           "BRIGHTRUN_DATABASE_URL": "postgresql+asyncpg://unused@127.0.0.1:1/unused",
           "BRIGHTRUN_S3_ENDPOINT": "http://127.0.0.1:1", "BRIGHTRUN_S3_ACCESS_KEY": "unused",
           "BRIGHTRUN_S3_SECRET_KEY": "unused", "BRIGHTRUN_DEFAULT_BASE_MODEL": "org/model",
           "BRIGHTRUN_INTERNAL_TOKEN_SECRET": "access-test-internal-token-secret-0123456789"}
    agent = subprocess.run([sys.executable, "-m", "services.trainer_agent"], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=120)
    assert agent.returncode == EXIT_STATUS
    last = agent.stderr.strip().splitlines()[-1]
    assert last.startswith(f"brightrun: cannot start: NATS at {nats.url} refused user 'trainer_agent' "
                           "(BRIGHTRUN_NATS_USER) with its BRIGHTRUN_NATS_PASSWORD"), agent.stderr
    assert "Traceback" not in agent.stderr
