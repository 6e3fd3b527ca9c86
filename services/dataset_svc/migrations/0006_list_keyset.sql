-- Keyset paging (services/common/paging.py): a list page is a range scan of the index whose columns are the
-- list's filter then its whole sort key, id included.
DROP INDEX datasets_user_created;
CREATE INDEX datasets_user_created_id ON datasets (user_id, created_at DESC, id DESC) WHERE deleted_at IS NULL;
