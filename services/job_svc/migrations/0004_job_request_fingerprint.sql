-- sha256 of the CreateJobRequest a request_id was first used with, so that the
-- same id with a different request is refused rather than answered with the
-- first job. NULL for jobs created before it was kept: those replay as before.
ALTER TABLE jobs ADD COLUMN request_fingerprint TEXT;
