-- GPU memory in use at a metric point, GiB; NULL where training ran without CUDA.
ALTER TABLE metric_points ADD COLUMN gpu_memory_gb DOUBLE PRECISION;
