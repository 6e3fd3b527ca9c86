-- How long the job waited queued before an agent took it (its last wait: from
-- waiting_since to the attempt's start); NULL until an agent takes it.
ALTER TABLE jobs ADD COLUMN queue_wait_seconds DOUBLE PRECISION;
