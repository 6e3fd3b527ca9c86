"""The launch checks with their I/O wired in, for EstimateJob and CreateJob:
the hub (only where BRIGHTRUN_HUB_CHECK is on), the model directory on disk,
and the ASSIGN consumers on NATS."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta, timezone

from services.common.config import Settings
from services.job_svc.agents import agent_sightings
from services.job_svc.hub import hub_lookup
from services.job_svc.hyperparameters import JobConfig
from services.job_svc.launch_checks import LaunchReport, check_launch, no_agent_warning

log = logging.getLogger(__name__)
_NATS_TIMEOUT_SECONDS = 2.0


async def launch_report(config: JobConfig, settings: Settings) -> LaunchReport:
    """:func:`check_launch`; off the event loop where it may ask the hub (a blocking call). Without the hub it
    only stats the model's config file, read once per version (``read_model_config``): on the loop, as a
    thread hop would cost more than the check on every EstimateJob.

    Raises InvalidArgument naming hyperparameters.base_model when it cannot be loaded.
    """
    if not settings.hub_check:
        return check_launch(config, None, bool(settings.hf_token))
    return await asyncio.to_thread(check_launch, config, hub_lookup(settings.hf_token), bool(settings.hf_token))


async def agent_warnings(nc, config: JobConfig, settings: Settings) -> list[str]:
    """A warning when no agent for the job's GPU type and count was seen lately; never raises:
    a job is queued whether or not JetStream can say who is listening."""
    try:
        sightings = await asyncio.wait_for(agent_sightings(nc.jetstream()), _NATS_TIMEOUT_SECONDS)
    except Exception as exc:
        log.warning("could not list the ASSIGN consumers: %s", exc)
        return ["Whether a trainer agent can take this job could not be checked; it stays queued until one does."]
    warning = no_agent_warning(sightings, config.gpu.type, config.gpu_count, datetime.now(timezone.utc),
                               timedelta(minutes=settings.agent_seen_minutes))
    return [warning] if warning else []
