"""Who may do what on NATS: one identity per process kind, each with the
subjects it publishes, the durable consumers it reads and the core subjects it
listens on. The services wire their consumers from the :class:`Consumer`
declared here, and the NATS server's ``authorization`` block is generated from
the same table (:func:`authorization_config`), so a permission cannot drift
from the code that needs it.

Why each rule is as narrow as it is:

* An identity reads its replies (JetStream API answers, publish acks, pulled
  messages) on its own inbox prefix, ``_INBOX_<identity>``; no other identity
  may subscribe there, so none can read another's replies.
* A consumer's identity may look it up, create it, pull from it, ack its
  messages and park them on ``deadletter.<durable>``; nothing on another's.
* Only the services create streams (``STREAM.CREATE`` of the streams declared
  in ``services.common.events.STREAMS``, idempotent with the same config);
  nobody updates, purges or deletes one but the ``admin`` identity (tests and
  operators).
* The trainer agent publishes only ``trainer.>`` (its events), its generation
  replies and its own consumers' acks. It cannot publish a job, dataset,
  artifact, billing or assignment event; which job it may report on is then
  job_svc's check (``services.job_svc.attempts``): an event of an attempt that
  does not hold the job is dropped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

# Streams by name (their subjects: services.common.events.STREAMS).
DATASETS, JOBS, ARTIFACTS, TRAINER, BILLING, ASSIGN, DEADLETTER = (
    "DATASETS", "JOBS", "ARTIFACTS", "TRAINER", "BILLING", "ASSIGN", "DEADLETTER")
STREAM_NAMES = (DATASETS, JOBS, ARTIFACTS, TRAINER, BILLING, ASSIGN, DEADLETTER)
# job_svc's live copy of each job (core NATS, not a stream): live.job.<job_id>.points|state.
LIVE_JOBS = "live.job"
# Where an agent answers a generation request: artifact_svc listens on generation.reply.<request>.
GENERATION_REPLIES = "generation.reply"
# JetStream tells, here, of an ASSIGN message it stopped redelivering.
MAX_DELIVERIES_ADVISORY = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.ASSIGN.*"
# The identity tests and operators use: every subject.
ADMIN = "admin"
# Any durable of a stream: agents name theirs by their hardware (agents-<gpu>-<count>, exports-<gpu>).
ANY = "*"


@dataclass(frozen=True)
class Consumer:
    """A durable pull consumer: the one declaration its service wires and its permissions come from."""

    stream: str
    durable: str
    subjects: tuple[str, ...]

    def wiring(self) -> dict:
        """The keywords ``ServiceRuntime.consume`` takes for this consumer."""
        return {"stream": self.stream, "durable": self.durable, "subjects": list(self.subjects)}


DATASET_VALIDATOR = Consumer(DATASETS, "dataset-validator", ("dataset.uploaded",))
DATASET_USAGE = Consumer(JOBS, "dataset-usage", ("job.queued", "job.completed", "job.failed", "job.cancelled"))
JOB_TRAINER = Consumer(TRAINER, "job-trainer", ("trainer.>",))
JOB_ARTIFACTS = Consumer(ARTIFACTS, "job-artifacts", ("artifact.created",))
JOB_BUDGET = Consumer(BILLING, "job-budget", ("billing.budget_exceeded",))
# job_svc's copy of the dataset facts its estimate reads (services.job_svc.dataset_facts): every dataset event.
JOB_DATASETS = Consumer(DATASETS, "job-datasets", ("dataset.>",))
# Its own durable (a consumer's subjects are fixed when it is first created): job_svc's copy of cost records.
JOB_COSTS = Consumer(BILLING, "job-costs", ("billing.cost_recorded",))
ARTIFACT_BUILDER = Consumer(JOBS, "artifact-builder", ("job.completed",))
ARTIFACT_EXPORTS = Consumer(TRAINER, "artifact-exports", ("trainer.export.>",))
BILLING_CONSUMERS = (
    Consumer(DATASETS, "billing-datasets", ("dataset.validated", "dataset.validation_failed")),
    Consumer(JOBS, "billing-jobs", ("job.queued", "job.started", "job.completed", "job.failed", "job.cancelled")),
    # Its own durable: a consumer's subjects are fixed when it is first created.
    Consumer(JOBS, "billing-progress", ("job.progressed",)),
    Consumer(JOBS, "billing-waits", ("job.waiting_for_agent",)),
    Consumer(ARTIFACTS, "billing-artifacts", ("artifact.created",)),
)
# Every agent's training and export consumers of ASSIGN (their names and filters follow the agent's hardware).
AGENT_ASSIGNMENTS = Consumer(ASSIGN, ANY, ("assign.>",))


@dataclass(frozen=True)
class Identity:
    """What one kind of process may do on NATS (see the module docstring)."""

    name: str
    publishes: tuple[str, ...] = ()
    consumes: tuple[Consumer, ...] = ()
    listens: tuple[str, ...] = ()
    # Further JetStream API requests, after ``$JS.API.`` (e.g. "STREAM.MSG.GET.ASSIGN").
    requests: tuple[str, ...] = ()
    creates_streams: bool = True

    def publish_allow(self) -> list[str]:
        allowed = list(self.publishes)
        if self.creates_streams:
            allowed += [f"$JS.API.STREAM.{verb}.{stream}" for stream in STREAM_NAMES for verb in ("INFO", "CREATE")]
        for consumer in self.consumes:
            on = f"{consumer.stream}.{consumer.durable}"
            allowed += [f"$JS.API.CONSUMER.{verb}.{on}" for verb in ("INFO", "CREATE", "DURABLE.CREATE", "MSG.NEXT")]
            allowed += [f"$JS.API.CONSUMER.CREATE.{on}.>", f"$JS.ACK.{on}.>", f"deadletter.{consumer.durable}"]
        allowed += [f"$JS.API.{request}" for request in self.requests]
        return _unique(allowed)

    def subscribe_allow(self) -> list[str]:
        # Its replies come on its own inbox prefix, which no other identity may subscribe to.
        return _unique([f"{inbox_prefix(self.name)}.>", *self.listens])


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


IDENTITIES: dict[str, Identity] = {i.name: i for i in (
    Identity("dataset_svc", publishes=("dataset.>",), consumes=(DATASET_VALIDATOR, DATASET_USAGE)),
    Identity(
        "job_svc",
        # Its events, the assignments it creates, and the live copy its watchers read.
        publishes=("job.>", "assign.*.*", f"{LIVE_JOBS}.*.*"),
        consumes=(JOB_TRAINER, JOB_ARTIFACTS, JOB_BUDGET, JOB_DATASETS, JOB_COSTS),
        listens=(f"{LIVE_JOBS}.*.*", MAX_DELIVERIES_ADVISORY),
        # Which agents are about (their ASSIGN consumers), and an abandoned assignment read and removed.
        requests=("CONSUMER.LIST.ASSIGN", "CONSUMER.INFO.ASSIGN.*", "STREAM.MSG.GET.ASSIGN",
                  "STREAM.MSG.DELETE.ASSIGN"),
    ),
    Identity(
        "artifact_svc",
        # Its events, export and generation assignments (assign.export.<gpu>, assign.<gpu>.1).
        publishes=("artifact.>", "assign.export.*", "assign.*.1"),
        consumes=(ARTIFACT_BUILDER, ARTIFACT_EXPORTS),
        listens=(f"{GENERATION_REPLIES}.*", MAX_DELIVERIES_ADVISORY),
        requests=("STREAM.MSG.GET.ASSIGN", "STREAM.MSG.DELETE.ASSIGN", "CONSUMER.INFO.ASSIGN.*"),
    ),
    Identity("billing_svc", publishes=("billing.>",), consumes=BILLING_CONSUMERS),
    Identity(
        "trainer_agent",
        # Its events, generation answers, and the flow control of its ordered consumer of JOBS.
        publishes=("trainer.>", f"{GENERATION_REPLIES}.*", "$JS.FC.JOBS.>"),
        consumes=(AGENT_ASSIGNMENTS,),
        # The jobs cancelled so far and as they are: the last one read, then an ordered consumer of JOBS
        # (created ephemeral, fed over flow control). The agent reads JOBS but cannot write it.
        requests=("STREAM.MSG.GET.JOBS", "CONSUMER.CREATE.JOBS"),
        creates_streams=False,
    ),
)}
USERS = (*IDENTITIES, ADMIN)


def inbox_prefix(user: str | None) -> str:
    """The inbox prefix a connection as ``user`` uses (NATS's default without a user)."""
    return f"_INBOX_{user}" if user else "_INBOX"


def authorization_config(passwords: dict[str, str]) -> str:
    """The NATS server's ``authorization`` block (server config syntax): one user per
    identity and ``admin``, each with its allow-lists. ``passwords`` maps every user
    in :data:`USERS` to its password, or to ``$VARIABLE`` for the server to read
    from its environment (how deploy/k8s keeps them in a Secret)."""
    lines = ["authorization {", "  users = ["]
    for name in USERS:
        password = passwords[name]
        shown = password if password.startswith("$") else json.dumps(password)
        if name == ADMIN:
            publish, subscribe = [">"], [">"]
        else:
            publish, subscribe = IDENTITIES[name].publish_allow(), IDENTITIES[name].subscribe_allow()
        lines += [
            f"    {{user: {json.dumps(name)}, password: {shown}, permissions: {{",
            f"      publish: {{allow: {json.dumps(publish)}}},",
            f"      subscribe: {{allow: {json.dumps(subscribe)}}}",
            "    }}",
        ]
    return "\n".join([*lines, "  ]", "}", ""])


def password_variable(user: str) -> str:
    """The environment variable a deployed NATS server reads ``user``'s password from."""
    return f"BRIGHTRUN_NATS_PASSWORD_{user.upper()}"


def k8s_config_map() -> str:
    """deploy/k8s/base/nats-auth.yaml: the authorization block as a ConfigMap for the operator's NATS
    server to include, its passwords read from the server's environment (the Secret
    ``brightrun-nats-users``). Written by ``python -m services.common.nats_access``; a test holds the
    file to this."""
    block = authorization_config({user: f"${password_variable(user)}" for user in USERS})
    body = "".join(f"    {line}\n" if line else "\n" for line in block.splitlines())
    return (
        "# Generated by `python -m services.common.nats_access > deploy/k8s/base/nats-auth.yaml` from\n"
        "# services/common/nats_access.py: one NATS user per BrightRun identity with its allow-lists.\n"
        "# Include it in your NATS server's config (`include ./brightrun-auth.conf`) and give the server\n"
        "# the variables it names from the Secret brightrun-nats-users (deploy/k8s/README.md).\n"
        "apiVersion: v1\n"
        "kind: ConfigMap\n"
        "metadata:\n"
        "  name: brightrun-nats-auth\n"
        "data:\n"
        "  brightrun-auth.conf: |\n"
        f"{body}"
    )


if __name__ == "__main__":
    print(k8s_config_map(), end="")
