-- The step the current attempt resumed after, as its plan reported (0: fresh):
-- a retried job's speed is measured on the steps its last attempt trained.
ALTER TABLE jobs ADD COLUMN resumed_from_step BIGINT NOT NULL DEFAULT 0;
