-- How the trainer splits the job's batch_size: {micro_batch_size,
-- gradient_accumulation_steps, world_size}; NULL until an attempt starts.
ALTER TABLE jobs ADD COLUMN batch_layout JSONB;
