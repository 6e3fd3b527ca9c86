-- Webhook endpoints of users, the events queued for each (one row per
-- endpoint and notification, so an event told again is never sent twice)
-- and every attempt at sending one. Delivery state lives here, so a restart
-- loses nothing: a delivery claimed by a process that died is taken again
-- once its lease (next_attempt_at) has passed.
CREATE TABLE webhooks (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id UUID NOT NULL,
  url TEXT NOT NULL,
  event_types TEXT[] NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  enabled BOOLEAN NOT NULL DEFAULT TRUE,
  -- "whsec_" + base64: needed whole to sign, so kept as given.
  secret TEXT NOT NULL,
  -- The HTTP Idempotency-Key it was created with, and the request's fingerprint.
  request_id TEXT,
  request_fingerprint TEXT,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX webhooks_user_created ON webhooks (user_id, created_at DESC);
CREATE UNIQUE INDEX webhooks_user_request ON webhooks (user_id, request_id) WHERE request_id IS NOT NULL;

CREATE TABLE webhook_deliveries (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  webhook_id UUID NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
  -- What is told; its id is the webhook-id header, the same on every attempt and endpoint.
  notification_id UUID NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
  event_type TEXT NOT NULL,
  -- The exact JSON body signed and sent.
  payload TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'failed')),
  next_attempt_at TIMESTAMPTZ,
  -- Set by a redelivery on request: a failed attempt ends the delivery instead of scheduling a retry.
  final_attempt BOOLEAN NOT NULL DEFAULT FALSE,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  UNIQUE (webhook_id, notification_id)
);

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_webhook_created ON webhook_deliveries (webhook_id, created_at DESC);

CREATE TABLE webhook_attempts (
  id BIGSERIAL PRIMARY KEY,
  delivery_id UUID NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
  attempted_at TIMESTAMPTZ NOT NULL,
  status_code INTEGER,
  error TEXT NOT NULL DEFAULT '',
  duration_ms BIGINT NOT NULL
);

CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, attempted_at);
