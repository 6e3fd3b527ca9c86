CREATE TABLE datasets (
  id UUID PRIMARY KEY,
  user_id UUID NOT NULL,
  name VARCHAR(200) NOT NULL,
  description TEXT,
  format VARCHAR(50) NOT NULL DEFAULT '',
  status VARCHAR(50) NOT NULL DEFAULT 'uploading',
  storage_bucket VARCHAR(100) NOT NULL,
  storage_path TEXT NOT NULL UNIQUE,
  file_name VARCHAR(255) NOT NULL,
  file_size BIGINT NOT NULL,
  sha256 CHAR(64),
  base_model TEXT NOT NULL,
  total_training_pairs INTEGER,
  total_validation_pairs INTEGER,
  total_tokens BIGINT,
  avg_turns_per_conversation DOUBLE PRECISION,
  avg_tokens_per_turn DOUBLE PRECISION,
  training_ready BOOLEAN NOT NULL DEFAULT FALSE,
  validated_at TIMESTAMPTZ,
  validation_errors JSONB,
  statistics JSONB,
  sample_data JSONB,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  deleted_at TIMESTAMPTZ
);
CREATE INDEX datasets_user_created ON datasets (user_id, created_at DESC) WHERE deleted_at IS NULL;
CREATE INDEX datasets_user_status ON datasets (user_id, status) WHERE deleted_at IS NULL;
