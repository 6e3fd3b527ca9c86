"""The shared service runtime against real PostgreSQL and NATS: a consumer
that ends before the service does turns the process's health NOT_SERVING; the
backlog gauges are sampled; a consumer's lines name the event's subject."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
import uuid

from google.protobuf import descriptor_pb2
from prometheus_client import REGISTRY
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from brightrun.job.v1 import job_pb2, job_pb2_grpc

from services.common import backlog, events, logs
from services.common.grpc import channel
from services.common.runtime import ServiceRuntime

SERVICE = "brightrun.test.v1.TestService"


async def _status(stub) -> int:
    return (await stub.Check(health_pb2.HealthCheckRequest(service=SERVICE))).status


async def test_a_consumer_that_ends_turns_health_not_serving(settings, tmp_path):
    runtime = await ServiceRuntime.open("test", settings, schema=f"t_{uuid.uuid4().hex[:12]}", migrations=tmp_path)
    port = await runtime.serve("127.0.0.1:0", [], [SERVICE])

    async def ignore(event) -> None:
        return None

    try:
        async with channel(f"127.0.0.1:{port}") as ch:
            stub = health_pb2_grpc.HealthStub(ch)
            runtime.consume(stream="DATASETS", durable=f"test-{uuid.uuid4().hex[:8]}",
                            subjects=[f"dataset.test-{uuid.uuid4().hex[:8]}"], handler=ignore)
            assert await _status(stub) == health_pb2.HealthCheckResponse.SERVING
            # A stream that does not exist: the consumer cannot even be created, and its task ends.
            runtime.consume(stream="NO_SUCH_STREAM", durable="test-orphan", subjects=["nowhere.>"], handler=ignore)
            deadline = time.monotonic() + 10
            while (status := await _status(stub)) == health_pb2.HealthCheckResponse.SERVING:
                assert time.monotonic() < deadline, "health stayed SERVING"
                await asyncio.sleep(0.05)
            assert status == health_pb2.HealthCheckResponse.NOT_SERVING
            assert not runtime.consuming
    finally:
        await runtime.stop()


async def test_a_service_describes_itself_by_reflection(settings, tmp_path):
    # What grpcurl does: list the services, then fetch the contract of one.
    runtime = await ServiceRuntime.open("test", settings, schema=f"t_{uuid.uuid4().hex[:12]}", migrations=tmp_path)
    name = job_pb2.DESCRIPTOR.services_by_name["JobService"].full_name
    register = [lambda server: job_pb2_grpc.add_JobServiceServicer_to_server(job_pb2_grpc.JobServiceServicer(), server)]
    port = await runtime.serve("127.0.0.1:0", register, [name])
    try:
        async with channel(f"127.0.0.1:{port}") as ch:
            stub = reflection_pb2_grpc.ServerReflectionStub(ch)
            asks = [
                reflection_pb2.ServerReflectionRequest(list_services=""),
                reflection_pb2.ServerReflectionRequest(file_containing_symbol=name),
            ]
            listed, described = [answer async for answer in stub.ServerReflectionInfo(iter(asks))]
    finally:
        await runtime.stop()
    services = {service.name for service in listed.list_services_response.service}
    assert {name, "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= services
    files = [descriptor_pb2.FileDescriptorProto.FromString(raw)
             for raw in described.file_descriptor_response.file_descriptor_proto]
    methods = {method.name for file in files for service in file.service for method in service.method}
    assert {"CreateJob", "EstimateJob", "WatchJob"} <= methods


async def test_a_service_samples_its_backlog_and_logs_an_events_subject(settings, tmp_path):
    """Outbox and consumer-lag gauges appear within a sampling period, and a handler's lines carry the
    dataset id its event is about."""
    name, durable, subject = f"test-{uuid.uuid4().hex[:8]}", f"test-{uuid.uuid4().hex[:8]}", f"dataset.t{uuid.uuid4().hex[:8]}"
    runtime = await ServiceRuntime.open(name, settings, schema=f"t_{uuid.uuid4().hex[:12]}", migrations=tmp_path)
    stream = io.StringIO()
    handler = logs.handler(name, "json", stream)
    logging.getLogger("test.runtime").addHandler(handler)
    handled = asyncio.Event()

    async def handle(event) -> None:
        logging.getLogger("test.runtime").warning("handling it")
        handled.set()

    dataset_id = str(uuid.uuid4())
    try:
        runtime.consume(stream="DATASETS", durable=durable, subjects=[subject], handler=handle)
        event = events.new_event(subject, producer="test", user_id=str(uuid.uuid4()), subject_id=dataset_id)
        await events.publish(runtime.js, subject, event.SerializeToString(), event.event_id)
        await asyncio.wait_for(handled.wait(), 20)
        deadline = time.monotonic() + 3 * backlog.SAMPLE_SECONDS
        while REGISTRY.get_sample_value("brightrun_consumer_pending_messages", {"stream": "DATASETS", "consumer": durable}) is None:
            assert time.monotonic() < deadline, "the consumer's lag was never sampled"
            await asyncio.sleep(0.2)
    finally:
        logging.getLogger("test.runtime").removeHandler(handler)
        await runtime.stop()
    assert REGISTRY.get_sample_value("brightrun_outbox_unpublished_messages", {"service": name}) == 0
    assert REGISTRY.get_sample_value("brightrun_outbox_oldest_unpublished_age_seconds", {"service": name}) == 0
    line = json.loads(stream.getvalue().splitlines()[0])
    assert line["message"] == "handling it" and line["dataset_id"] == dataset_id and "job_id" not in line
