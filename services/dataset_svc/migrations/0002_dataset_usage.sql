-- Jobs that use a dataset, learned from job events: a dataset in use by a
-- queued or running job cannot be deleted.
CREATE TABLE dataset_usage (
  job_id UUID PRIMARY KEY,
  dataset_id UUID NOT NULL,
  active BOOLEAN NOT NULL
);
CREATE INDEX dataset_usage_active ON dataset_usage (dataset_id) WHERE active;
