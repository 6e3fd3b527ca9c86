-- The model (artifact id, artifact_svc's) whose adapter a job continues training; NULL for a fresh adapter.
ALTER TABLE jobs ADD COLUMN parent_model_id UUID;
