-- When the job last became queued (created, or handed back for a retry), and
-- when its owner was told that no agent had taken it (once per job; NULL: not yet).
ALTER TABLE jobs ADD COLUMN waiting_since TIMESTAMPTZ NOT NULL DEFAULT now();
ALTER TABLE jobs ADD COLUMN waiting_alerted_at TIMESTAMPTZ;
-- The clock's sweeps: running jobs by their last change, queued ones by how long they wait.
CREATE INDEX jobs_status_updated ON jobs (status, updated_at);
