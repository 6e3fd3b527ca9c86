-- Row-level security, the second wall behind every query's own user filter
-- (services.common.row_security): a session sees and writes only the rows of the user it acts for,
-- or every row when it acts for the platform. FORCE: the service's role owns these tables.
ALTER TABLE model_artifacts ENABLE ROW LEVEL SECURITY;
ALTER TABLE model_artifacts FORCE ROW LEVEL SECURITY;
CREATE POLICY owner ON model_artifacts
  USING (acting_for_platform() OR user_id = acting_user())
  WITH CHECK (acting_for_platform() OR user_id = acting_user());

ALTER TABLE model_exports ENABLE ROW LEVEL SECURITY;
ALTER TABLE model_exports FORCE ROW LEVEL SECURITY;
CREATE POLICY owner ON model_exports
  USING (acting_for_platform() OR user_id = acting_user())
  WITH CHECK (acting_for_platform() OR user_id = acting_user());
