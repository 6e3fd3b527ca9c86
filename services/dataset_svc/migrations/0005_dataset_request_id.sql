-- The Idempotency-Key a dataset was created with and the sha256 of that
-- CreateDatasetRequest (services.common.idempotency): a retry with the key
-- answers with the same dataset, another request with it is refused.
ALTER TABLE datasets ADD COLUMN request_id TEXT;
ALTER TABLE datasets ADD COLUMN request_fingerprint TEXT;
ALTER TABLE datasets ADD CONSTRAINT datasets_user_request_id UNIQUE (user_id, request_id);
