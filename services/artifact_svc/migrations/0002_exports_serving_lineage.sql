-- Serving checks recorded with each artifact (services/artifact_svc/serving.py),
-- and exports of an artifact (a merged model), made by trainer agents.
ALTER TABLE model_artifacts ADD COLUMN serving JSONB NOT NULL DEFAULT '[]';

CREATE TABLE model_exports (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  artifact_id UUID NOT NULL REFERENCES model_artifacts(id),
  user_id UUID NOT NULL,
  kind VARCHAR(20) NOT NULL,
  status VARCHAR(20) NOT NULL DEFAULT 'queued',
  error TEXT NOT NULL DEFAULT '',
  storage_bucket VARCHAR(100) NOT NULL,
  prefix TEXT NOT NULL,
  files JSONB NOT NULL DEFAULT '[]',
  created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  completed_at TIMESTAMPTZ
);

-- One live export per artifact and kind: asking again answers it; a failed one may be asked for anew.
CREATE UNIQUE INDEX model_exports_live ON model_exports (artifact_id, kind) WHERE status <> 'failed';
CREATE INDEX model_exports_user_artifact ON model_exports (user_id, artifact_id, created_at DESC);
