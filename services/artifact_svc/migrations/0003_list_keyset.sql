-- Keyset paging (services/common/paging.py): a list page is a range scan of the index whose columns are the
-- list's filter then its whole sort key, id included.
DROP INDEX model_artifacts_user_created;
CREATE INDEX model_artifacts_user_created_id ON model_artifacts (user_id, created_at DESC, id DESC)
  WHERE deleted_at IS NULL;
