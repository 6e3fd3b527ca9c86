"""Which trainer agents job_svc has seen, from the ASSIGN stream's consumers.

Agents announce nothing of their own: each kind of node shares one durable
pull consumer of ASSIGN filtered to the subjects it takes, and NATS reports
for it the pull requests waiting (agents idle and polling), the assignments
delivered and not yet acked (agents at work) and when it last delivered.
"""

from __future__ import annotations

from services.job_svc.launch_checks import AgentSighting

STREAM = "ASSIGN"


async def agent_sightings(js) -> list[AgentSighting]:
    """Every ASSIGN consumer as a sighting; raises the NATS client's errors when JetStream cannot answer."""
    sightings = []
    for info in await js.consumers_info(STREAM):
        config = info.config
        subjects = tuple(config.filter_subjects or ()) + ((config.filter_subject,) if config.filter_subject else ())
        sightings.append(AgentSighting(
            subjects=subjects, waiting_pulls=info.num_waiting or 0, assignments_in_hand=info.num_ack_pending or 0,
            last_delivery=info.delivered.last_active if info.delivered else None,
        ))
    return sightings
