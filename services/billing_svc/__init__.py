"""billing_svc: cost records accrued from job events, the cost dashboard, monthly budgets, and notifications."""
