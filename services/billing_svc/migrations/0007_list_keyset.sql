-- Keyset paging (services/common/paging.py): a list page is a range scan of the index whose columns are the
-- list's filter then its whole sort key, id included.
DROP INDEX cost_records_user_recorded;
CREATE INDEX cost_records_user_recorded_id ON cost_records (user_id, recorded_at DESC, id DESC);
DROP INDEX cost_records_user_job;
CREATE INDEX cost_records_user_job_recorded ON cost_records (user_id, job_id, recorded_at DESC, id DESC);
DROP INDEX notifications_user_created;
CREATE INDEX notifications_user_created_id ON notifications (user_id, created_at DESC, id DESC);
DROP INDEX notifications_user_unread;
CREATE INDEX notifications_user_unread_id ON notifications (user_id, created_at DESC, id DESC) WHERE NOT read;
DROP INDEX webhooks_user_created;
CREATE INDEX webhooks_user_created_id ON webhooks (user_id, created_at DESC, id DESC);
DROP INDEX webhook_deliveries_webhook_created;
CREATE INDEX webhook_deliveries_webhook_created_id ON webhook_deliveries (webhook_id, created_at DESC, id DESC);
