-- Model artifacts (spec FR-1.1), one per completed job. The job and dataset
-- live in other services, so their ids carry no foreign keys here.
CREATE TABLE model_artifacts (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id UUID NOT NULL,
  job_id UUID NOT NULL UNIQUE,
  dataset_id UUID NOT NULL,
  name VARCHAR(200) NOT NULL,
  version VARCHAR(50) NOT NULL DEFAULT '1.0.0',
  description TEXT,
  status VARCHAR(50) NOT NULL DEFAULT 'stored',
  deployed_at TIMESTAMPTZ,
  quality_metrics JSONB NOT NULL,
  training_summary JSONB NOT NULL,
  configuration JSONB NOT NULL,
  artifacts JSONB NOT NULL,
  storage_bucket VARCHAR(100) NOT NULL,
  parent_model_id UUID REFERENCES model_artifacts(id),
  created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  deleted_at TIMESTAMPTZ
);

CREATE INDEX model_artifacts_user_created ON model_artifacts (user_id, created_at DESC) WHERE deleted_at IS NULL;
