-- job_svc's own copy of the dataset facts its estimate reads, carried by dataset_svc's events on DATASETS
-- (services/job_svc/dataset_facts.py). Never dataset_svc's table: a row is what the last event applied said.
CREATE TABLE dataset_facts (
  dataset_id UUID PRIMARY KEY,
  user_id UUID NOT NULL,
  name TEXT NOT NULL,
  -- The dataset's status as its event named it ("ready", "validating", ...).
  status TEXT NOT NULL,
  -- NULL until validated, as the dataset's own total_tokens.
  total_tokens BIGINT,
  -- The two statistics the estimate reads (services.common.steps: CONVERSATIONS, VALIDATION_CONVERSATIONS);
  -- NULL when the dataset's statistics do not have them (not validated).
  conversations BIGINT,
  validation_conversations BIGINT,
  -- Set by dataset.deleted: the dataset is gone for good.
  deleted_at TIMESTAMPTZ,
  -- The dataset's updated_at in the event applied last: an event older than this changes nothing.
  version TIMESTAMPTZ NOT NULL
);

-- Row-level security as on jobs (0012_row_level_security.sql): a session sees and writes only the rows of the
-- user it acts for, or every row when it acts for the platform (the DATASETS consumer).
ALTER TABLE dataset_facts ENABLE ROW LEVEL SECURITY;
ALTER TABLE dataset_facts FORCE ROW LEVEL SECURITY;
CREATE POLICY owner ON dataset_facts
  USING (acting_for_platform() OR user_id = acting_user())
  WITH CHECK (acting_for_platform() OR user_id = acting_user());
