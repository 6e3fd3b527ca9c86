"""job_svc's copy of each job's cost records, so that a job's detail (GetJobDetail) is one call and one
statement instead of a second call to billing_svc for them.

billing_svc publishes every record it writes as ``billing.cost_recorded`` through its outbox, so none is
lost; this consumer keeps each job's, keyed by the record's id, so a redelivery or a replay inserts
nothing. A new deployment's consumer starts from the stream's first message, so the jobs charged before
it are filled in too. billing_svc's table stays the record of truth (ListCostRecords, ``/api/costs``);
this copy lags it by one event delivery: a record billing just wrote shows in the detail once its event
has been relayed and consumed, usually well under a second later. A charge of no job is not kept.
"""

from __future__ import annotations

from brightrun.billing.v1 import billing_pb2
from brightrun.events.v1 import events_pb2
from services.common.db import Database
from services.common.events import Unappliable
from services.common.paging import canonical_uuid
from services.job_svc import store


class CostRecords:
    """The handler of the ``job-costs`` consumer (services.common.nats_access.JOB_COSTS)."""

    def __init__(self, db: Database):
        self._db = db

    async def handle_batch(self, batch: list[events_pb2.Event]) -> None:
        """Store the job cost records of ``batch`` with one statement, in one transaction.

        Raises Unappliable for a record whose ids are not UUIDs: the consumer then applies the batch one
        event at a time and parks that one.
        """
        records = [_checked(event.cost_recorded.cost_record) for event in batch
                   if event.HasField("cost_recorded") and event.cost_recorded.cost_record.HasField("job_id")]
        if records:
            async with self._db.transaction() as conn:
                await store.insert_cost_records(conn, records)


def _checked(record: billing_pb2.CostRecord) -> billing_pb2.CostRecord:
    """``record`` with its ids canonical; raises Unappliable naming any that is not a UUID."""
    ids = {name: canonical_uuid(getattr(record, name)) for name in ("id", "job_id", "user_id")}
    if bad := [name for name, value in ids.items() if value is None]:
        raise Unappliable(f"cost record {', '.join(bad)} must be UUIDs: {record.id!r}")
    for name, value in ids.items():
        setattr(record, name, value)
    return record
