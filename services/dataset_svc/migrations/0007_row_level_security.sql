-- Row-level security, the second wall behind every query's own user filter
-- (services.common.row_security): a session sees and writes only the rows of the user it acts for,
-- or every row when it acts for the platform. FORCE: the service's role owns these tables.
ALTER TABLE datasets ENABLE ROW LEVEL SECURITY;
ALTER TABLE datasets FORCE ROW LEVEL SECURITY;
CREATE POLICY owner ON datasets
  USING (acting_for_platform() OR user_id = acting_user())
  WITH CHECK (acting_for_platform() OR user_id = acting_user());

-- Its dataset's owner's (the datasets policy applies inside the subquery).
ALTER TABLE dataset_usage ENABLE ROW LEVEL SECURITY;
ALTER TABLE dataset_usage FORCE ROW LEVEL SECURITY;
CREATE POLICY owner ON dataset_usage
  USING (acting_for_platform() OR EXISTS (SELECT FROM datasets p WHERE p.id = dataset_usage.dataset_id))
  WITH CHECK (acting_for_platform() OR EXISTS (SELECT FROM datasets p WHERE p.id = dataset_usage.dataset_id));
