-- job_svc's read model of each job's cost records, so that a job's detail is one call and one statement.
-- Fed by billing_svc's billing.cost_recorded events (services.job_svc.cost_records); billing_svc's
-- cost_records stay the record of truth. Keyed by the record's id: a redelivered event inserts nothing.
-- `record` is the brightrun.billing.v1.CostRecord as billing published it, answered as it is.
CREATE TABLE job_cost_records (
  id UUID PRIMARY KEY,
  job_id UUID NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  user_id UUID NOT NULL,
  recorded_at TIMESTAMPTZ NOT NULL,
  record BYTEA NOT NULL
);
-- A job's records newest first (billing's order: recorded_at, then id), one range scan.
CREATE INDEX job_cost_records_job_recorded_id ON job_cost_records (job_id, recorded_at DESC, id DESC);

-- Row-level security as on jobs (0012_row_level_security.sql): a record is its user's.
ALTER TABLE job_cost_records ENABLE ROW LEVEL SECURITY;
ALTER TABLE job_cost_records FORCE ROW LEVEL SECURITY;
CREATE POLICY owner ON job_cost_records
  USING (acting_for_platform() OR user_id = acting_user())
  WITH CHECK (acting_for_platform() OR user_id = acting_user());
