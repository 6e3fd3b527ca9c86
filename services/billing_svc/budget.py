"""Monthly budgets: the standing of a calendar month (UTC),
whether a job's estimate fits it, and the notices at 80% and 100%. Pure: no I/O.

Amounts are integer cents. Remaining is the budget less what the month's
cost records charged less what queued and running jobs have committed (the
part of their estimates not yet charged), so two jobs launched together
cannot both spend the same remainder.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

from services.billing_svc.notices import NotificationDraft
from services.common.errors import field_errors

MAX_BUDGET_CENTS = 100_000_000 * 100
# Percent of the budget at which the user is told, once each a month.
THRESHOLDS = (80, 100)


@dataclass(frozen=True)
class Standing:
    """A user's month: budget (None without one), spent and committed, in cents."""

    month: date
    budget_cents: int | None
    spent_cents: int
    committed_cents: int

    @property
    def remaining_cents(self) -> int | None:
        if self.budget_cents is None:
            return None
        return self.budget_cents - self.spent_cents - self.committed_cents

    @property
    def spent_all(self) -> bool:
        """Whether this month's records charged the whole budget: running jobs are then stopped."""
        return self.budget_cents is not None and self.spent_cents >= self.budget_cents

    def allows(self, estimate_cents: int) -> bool:
        """Whether a job estimated at ``estimate_cents`` fits what remains (always, without a budget)."""
        remaining = self.remaining_cents
        return remaining is None or estimate_cents <= remaining


def budget_cents(amount: float) -> int:
    """A budget in dollars as cents; raises InvalidArgument naming ``amount`` when it is not 0 to 100000000."""
    if not math.isfinite(amount) or amount < 0 or amount * 100 > MAX_BUDGET_CENTS:
        field_errors({"amount": [f"must be a number of US dollars from 0 to {MAX_BUDGET_CENTS // 100}, not {amount}"]})
    return round(amount * 100)


def estimate_cents(amount: float) -> int:
    """A job's estimate in cents; raises InvalidArgument naming ``estimated_cost`` when negative or not finite."""
    if not math.isfinite(amount) or amount < 0:
        field_errors({"estimated_cost": [f"must be 0 or more US dollars, not {amount}"]})
    return round(amount * 100)


def threshold_notices(user_id: str, standing: Standing) -> list[NotificationDraft]:
    """The notices the month's spending warrants; each has a key per user, month and threshold,
    so it is written once a month however often the spending is looked at."""
    budget = standing.budget_cents
    if budget is None or standing.spent_cents <= 0:
        return []
    month = standing.month.strftime("%Y-%m")
    notices = []
    for threshold in THRESHOLDS:
        if standing.spent_cents * 100 < budget * threshold:
            continue
        reached = threshold >= 100
        notices.append(
            NotificationDraft(
                user_id=user_id,
                type="budget_exceeded" if reached else "budget_warning",
                title="Monthly Budget Reached" if reached else f"{threshold}% of Monthly Budget Used",
                message=(
                    f"You have spent ${standing.spent_cents / 100:.2f} of your ${budget / 100:.2f} budget for "
                    f"{month}" + (": new jobs that do not fit are refused" if reached else "")
                ),
                priority="high" if reached else "medium",
                action_url="/billing",
                metadata={"month": month, "threshold": threshold, "budget": budget / 100,
                          "spent": standing.spent_cents / 100},
                key=f"budget:{user_id}:{month}:{threshold}",
            )
        )
    return notices
