-- The current attempt's first metric point (its step and the trainer's time of
-- it), which the ETA measures the pace from; NULL until that point arrives.
ALTER TABLE jobs ADD COLUMN pace_step BIGINT;
ALTER TABLE jobs ADD COLUMN pace_since TIMESTAMPTZ;
