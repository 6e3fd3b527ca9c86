-- A monthly budget per user (issue 8, item 6), in cents; the month is the
-- calendar month in UTC, so nothing needs resetting when one begins.
CREATE TABLE budgets (
  user_id UUID PRIMARY KEY,
  amount_cents BIGINT NOT NULL CHECK (amount_cents >= 0),
  updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Whether billing asked job_svc to stop the job for its user's budget: once per job.
ALTER TABLE job_charges ADD COLUMN stop_requested BOOLEAN NOT NULL DEFAULT FALSE;
