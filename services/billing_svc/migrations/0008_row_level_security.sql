-- Row-level security, the second wall behind every query's own user filter
-- (services.common.row_security): a session sees and writes only the rows of the user it acts for,
-- or every row when it acts for the platform. FORCE: the service's role owns these tables.
ALTER TABLE cost_records ENABLE ROW LEVEL SECURITY;
ALTER TABLE cost_records FORCE ROW LEVEL SECURITY;
CREATE POLICY owner ON cost_records
  USING (acting_for_platform() OR user_id = acting_user())
  WITH CHECK (acting_for_platform() OR user_id = acting_user());

ALTER TABLE notifications ENABLE ROW LEVEL SECURITY;
ALTER TABLE notifications FORCE ROW LEVEL SECURITY;
CREATE POLICY owner ON notifications
  USING (acting_for_platform() OR user_id = acting_user())
  WITH CHECK (acting_for_platform() OR user_id = acting_user());

ALTER TABLE job_charges ENABLE ROW LEVEL SECURITY;
ALTER TABLE job_charges FORCE ROW LEVEL SECURITY;
CREATE POLICY owner ON job_charges
  USING (acting_for_platform() OR user_id = acting_user())
  WITH CHECK (acting_for_platform() OR user_id = acting_user());

ALTER TABLE budgets ENABLE ROW LEVEL SECURITY;
ALTER TABLE budgets FORCE ROW LEVEL SECURITY;
CREATE POLICY owner ON budgets
  USING (acting_for_platform() OR user_id = acting_user())
  WITH CHECK (acting_for_platform() OR user_id = acting_user());

ALTER TABLE webhooks ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhooks FORCE ROW LEVEL SECURITY;
CREATE POLICY owner ON webhooks
  USING (acting_for_platform() OR user_id = acting_user())
  WITH CHECK (acting_for_platform() OR user_id = acting_user());

-- Its webhook's owner's (the webhooks policy applies inside the subquery).
ALTER TABLE webhook_deliveries ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_deliveries FORCE ROW LEVEL SECURITY;
CREATE POLICY owner ON webhook_deliveries
  USING (acting_for_platform() OR EXISTS (SELECT FROM webhooks p WHERE p.id = webhook_deliveries.webhook_id))
  WITH CHECK (acting_for_platform() OR EXISTS (SELECT FROM webhooks p WHERE p.id = webhook_deliveries.webhook_id));

-- Its delivery's, so its webhook's owner's.
ALTER TABLE webhook_attempts ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_attempts FORCE ROW LEVEL SECURITY;
CREATE POLICY owner ON webhook_attempts
  USING (acting_for_platform() OR EXISTS (SELECT FROM webhook_deliveries p WHERE p.id = webhook_attempts.delivery_id))
  WITH CHECK (acting_for_platform() OR EXISTS (SELECT FROM webhook_deliveries p WHERE p.id = webhook_attempts.delivery_id));
