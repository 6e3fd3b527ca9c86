-- Validations begun since the dataset last entered `validating`: a validator
-- killed mid-file (out of memory, a restart) leaves no other trace, and its
-- redelivery must not start the same fatal pass for ever.
ALTER TABLE datasets ADD COLUMN validation_attempts INTEGER NOT NULL DEFAULT 0;
