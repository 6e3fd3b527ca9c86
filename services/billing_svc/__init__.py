"""billing_svc: cost records, the cost dashboard, and notifications."""
