-- One notification per thing that happened (issue 14): a job's event
-- re-published under a new event id passes the processed-event claim, so the
-- notification itself is unique on what it tells, e.g. "job:<id>:job_completed".
-- Notifications written before this have no key.
ALTER TABLE notifications ADD COLUMN natural_key TEXT;
CREATE UNIQUE INDEX notifications_natural_key ON notifications (natural_key) WHERE natural_key IS NOT NULL;
