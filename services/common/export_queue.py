"""Where export assignments wait: on the ASSIGN work queue under
``assign.export.<gpu_type>``, taken by the agents of that GPU type through one
shared durable consumer. artifact_svc publishes there and the trainer agent
takes from there; job_svc's assignment handling skips these consumers.
"""

from __future__ import annotations

DURABLE_PREFIX = "exports-"


def export_subject(gpu_type: str) -> str:
    return f"assign.export.{gpu_type}"


def export_durable(gpu_type: str) -> str:
    return f"{DURABLE_PREFIX}{gpu_type}"


def is_export_consumer(consumer: str) -> bool:
    return consumer.startswith(DURABLE_PREFIX)
