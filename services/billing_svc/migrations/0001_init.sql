-- Cost records and notifications (spec FR-1.1). Jobs live in job_svc, so
-- job_id carries no foreign key here.
CREATE TABLE cost_records (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id UUID NOT NULL,
  job_id UUID,
  cost_type VARCHAR(50) NOT NULL,
  amount DECIMAL(10, 2) NOT NULL,
  details JSONB,
  billing_period DATE NOT NULL,
  recorded_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX cost_records_user_recorded ON cost_records (user_id, recorded_at DESC);
CREATE INDEX cost_records_user_period ON cost_records (user_id, billing_period DESC);
CREATE INDEX cost_records_user_job ON cost_records (user_id, job_id);
-- A job ends once: one compute and one storage charge at most, even if its
-- final event were published again under a new event id.
CREATE UNIQUE INDEX cost_records_job_type ON cost_records (job_id, cost_type) WHERE job_id IS NOT NULL;

CREATE TABLE notifications (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id UUID NOT NULL,
  type VARCHAR(50) NOT NULL,
  title VARCHAR(200) NOT NULL,
  message TEXT NOT NULL,
  priority VARCHAR(20) NOT NULL DEFAULT 'medium',
  read BOOLEAN NOT NULL DEFAULT FALSE,
  action_url TEXT,
  metadata JSONB,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX notifications_user_created ON notifications (user_id, created_at DESC);
CREATE INDEX notifications_user_unread ON notifications (user_id, read, created_at DESC);
