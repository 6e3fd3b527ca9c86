-- The training speed measured on completed jobs, one row per kind of run
-- (services/job_svc/speed.py: speed_key), an exponentially weighted average.
CREATE TABLE measured_speeds (
  speed_key TEXT PRIMARY KEY,
  tokens_per_second DOUBLE PRECISION NOT NULL,
  overhead_seconds DOUBLE PRECISION NOT NULL,
  runs INTEGER NOT NULL,
  updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- What a job's speed is measured as, fixed when it is created: its kind of
-- run and the tokens its estimate planned; NULL for jobs created before.
ALTER TABLE jobs ADD COLUMN speed_key TEXT;
ALTER TABLE jobs ADD COLUMN planned_tokens DOUBLE PRECISION;
-- When the current attempt began: a measured duration counts from it.
ALTER TABLE jobs ADD COLUMN attempt_started_at TIMESTAMPTZ;
