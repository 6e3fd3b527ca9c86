-- Row-level security, the second wall behind every query's own user filter
-- (services.common.row_security): a session sees and writes only the rows of the user it acts for,
-- or every row when it acts for the platform. FORCE: the service's role owns these tables.
ALTER TABLE jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE jobs FORCE ROW LEVEL SECURITY;
CREATE POLICY owner ON jobs
  USING (acting_for_platform() OR user_id = acting_user())
  WITH CHECK (acting_for_platform() OR user_id = acting_user());

-- Its job's owner's (the jobs policy applies inside the subquery).
ALTER TABLE metric_points ENABLE ROW LEVEL SECURITY;
ALTER TABLE metric_points FORCE ROW LEVEL SECURITY;
CREATE POLICY owner ON metric_points
  USING (acting_for_platform() OR EXISTS (SELECT FROM jobs p WHERE p.id = metric_points.job_id))
  WITH CHECK (acting_for_platform() OR EXISTS (SELECT FROM jobs p WHERE p.id = metric_points.job_id));
