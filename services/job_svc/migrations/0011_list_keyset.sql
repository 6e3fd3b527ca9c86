-- Keyset paging (services/common/paging.py): a list page is a range scan of the index whose columns are the
-- list's filter then its whole sort key, id included.
DROP INDEX jobs_user_created;
CREATE INDEX jobs_user_created_id ON jobs (user_id, created_at DESC, id DESC);
CREATE INDEX jobs_user_status_created_id ON jobs (user_id, status, created_at DESC, id DESC);
