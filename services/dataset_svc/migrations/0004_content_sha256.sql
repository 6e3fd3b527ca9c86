-- The sha256 of the object as the validator read it: a trainer agent checks
-- its download against it, so a job never trains on bytes that were not
-- validated. NULL until a validation has read the file.
ALTER TABLE datasets ADD COLUMN content_sha256 CHAR(64);
