"""The agent says it took a job before it does anything slow with it: job_svc
shows the job initializing while the dataset downloads and the model loads."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from types import SimpleNamespace

from brightrun.job.v1 import job_pb2
from services.trainer_agent import agent as agent_module
from services.trainer_agent.agent import AgentSettings, TrainerAgent


class _Relay:
    """Records each event in the order the agent sends it; every one counts as published."""

    def __init__(self):
        self.sent: list[str] = []

    def send(self, event) -> int:
        self.sent.append(event.type)
        return len(self.sent)

    async def wait_published(self, mark: int, timeout: float | None = None) -> bool:
        return True


class _Storage:
    """Notes which events were sent when the dataset download began, then hands over bytes that fail the
    sha256 check: the attempt ends there, before any worker starts."""

    def __init__(self, relay: _Relay):
        self._relay = relay
        self.sent_before_download: list[str] | None = None

    def download_file(self, bucket: str, key: str, path: Path) -> None:
        self.sent_before_download = list(self._relay.sent)
        path.write_bytes(b"not the validated dataset\n")


class _Msg:
    def __init__(self):
        self.metadata = SimpleNamespace(num_delivered=1)
        self.settled: list[str] = []

    async def term(self):
        self.settled.append("term")

    async def nak(self, delay: float = 0):
        self.settled.append("nak")

    async def ack_sync(self):
        self.settled.append("ack")

    async def in_progress(self):
        pass


async def test_the_agent_reports_the_attempt_started_before_it_downloads_the_dataset(tmp_path, monkeypatch):
    relay = _Relay()
    storage = _Storage(relay)
    monkeypatch.setattr(agent_module, "GrantedStore", lambda grant: storage)
    agent = TrainerAgent(None, AgentSettings(agent_id="a1", gpu_type="CPU", gpu_count=1, work_dir=tmp_path,
                                             io_retry_seconds=1.0))
    agent._relay = relay
    assignment = job_pb2.TrainingAssignment(
        job_id=str(uuid.uuid4()), user_id=str(uuid.uuid4()), dataset_bucket="datasets", dataset_path="d.jsonl",
        dataset_sha256="0" * 64, output_bucket="artifacts", output_prefix="jobs/x/",
        hyperparameters=job_pb2.Hyperparameters(base_model="tiny", batch_size=8),
        gpu_config=job_pb2.GpuConfig(type="CPU", count=1),
    )
    msg = _Msg()

    await agent._handle(msg, assignment, asyncio.Event())

    assert storage.sent_before_download == ["trainer.attempt.started"]
    assert relay.sent == ["trainer.attempt.started", "trainer.attempt.failed"]
    assert msg.settled == ["term"]  # the changed dataset is the user's: no retry
