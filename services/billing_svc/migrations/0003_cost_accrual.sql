-- Costs accrue while a job runs (issue 8, item 5): a job has many compute
-- records, each unique on what it covers, e.g. "job:<id>:compute:through:1234"
-- (the job's cumulative charge in cents after it), "job:<id>:compute:final"
-- or "job:<id>:storage".
DROP INDEX cost_records_job_type;
ALTER TABLE cost_records ADD COLUMN natural_key TEXT;
UPDATE cost_records
SET natural_key = 'job:' || job_id || ':' || CASE cost_type WHEN 'compute' THEN 'compute:final' ELSE cost_type END
WHERE job_id IS NOT NULL;
CREATE UNIQUE INDEX cost_records_natural_key ON cost_records (natural_key) WHERE natural_key IS NOT NULL;

-- What billing has charged each job so far: locked while a charge is added,
-- so two events of one job never charge the same interval twice. A job's
-- estimate, while it has not ended, is committed against its user's budget.
CREATE TABLE job_charges (
  job_id UUID PRIMARY KEY,
  user_id UUID NOT NULL,
  estimated_cents BIGINT NOT NULL DEFAULT 0,
  charged_cents BIGINT NOT NULL DEFAULT 0,
  last_accrued_at TIMESTAMPTZ,
  ended BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX job_charges_user_open ON job_charges (user_id) WHERE NOT ended;

-- Jobs billed before accrual were billed once, at their end.
INSERT INTO job_charges (job_id, user_id, charged_cents, ended)
SELECT job_id, user_id, round(amount * 100), TRUE FROM cost_records
WHERE job_id IS NOT NULL AND cost_type = 'compute'
ON CONFLICT (job_id) DO NOTHING;
