"""Which trainer events come from the attempt that holds their job.

The agent that takes delivery N of a job's assignment reports as attempt N
(JetStream counts the deliveries). Its ``trainer.attempt.started`` takes the
job: the job's ``attempt`` becomes N. Every other event of the job must then
carry that attempt, and a start must carry at least it. Anything else is
dropped (acked, logged, counted in ``brightrun_trainer_events_dropped_total``):
an agent that went silent and kept reporting after its assignment was handed
to another, or an event forged with the agents' NATS credentials
(``services.common.nats_access`` lets agents publish ``trainer.>`` only; which
job they may report on is checked here).

Limits: the agents share one identity, so agent credentials can still report
as the current attempt of any job, or start a higher attempt; and JetStream
counts deliveries per consumer, so an operator who deletes an agents' ASSIGN
consumer restarts the count, and the events of the jobs in flight are
dropped until those jobs are abandoned.
"""

from __future__ import annotations

import logging

from prometheus_client import Counter

from brightrun.events.v1 import events_pb2

log = logging.getLogger(__name__)
START = "trainer_attempt_started"

DROPPED = Counter(
    "brightrun_trainer_events_dropped_total",
    "Trainer events job_svc dropped because their attempt does not hold the job (stale or forged)",
    ["kind"],
)


def holding(batch: list[events_pb2.Event], attempts: dict[str, int]) -> list[events_pb2.Event]:
    """``batch`` (trainer events, in stream order) less each event of an attempt that does not hold its job.

    ``attempts`` maps each job id to the attempt that holds it before the batch
    (0: none yet); a start in the batch takes its job for the events after it.
    """
    holder = dict(attempts)
    kept = []
    for event in batch:
        kind = event.WhichOneof("payload")
        attempt, current = getattr(event, kind).attempt, holder.get(event.subject_id, 0)
        if kind == START and attempt >= current:
            holder[event.subject_id] = attempt
        elif attempt != current:
            log.warning("job %s: dropped %s %s of attempt %d; attempt %d holds the job",
                        event.subject_id, event.type, event.event_id, attempt, current)
            DROPPED.labels(kind).inc()  # the payload's kind: a label bounded whatever a forger names its type
            continue
        kept.append(event)
    return kept
