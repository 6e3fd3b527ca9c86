"""The Job aggregate: a job's status and its legal moves, its plan and the steps
done, progress, ETA, cost so far and why it failed. Pure.

queued -> initializing -> running -> completed, and any state not yet ended
-> failed | cancelled. A failed attempt that will be retried goes back to
queued. Every method checks its move against this machine and raises
FailedPrecondition for an illegal one; it records the fields it changed in
``changes`` and returns the types of the events to publish, which the service
layer writes with those changes in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from services.common.errors import FailedPrecondition
from services.job_svc.measures import cost_so_far, estimated_completion, hourly_rate, progress

TERMINAL = frozenset({"completed", "failed", "cancelled"})
_NEXT = {
    "queued": {"initializing", "failed", "cancelled"},
    "initializing": {"running", "queued", "failed", "cancelled"},
    "running": {"completed", "queued", "failed", "cancelled"},
}
# Retryable attempt failures a job absorbs before it fails for good.
MAX_RETRIES = 3


def can_move(current: str, target: str) -> bool:
    return target in _NEXT.get(current, set())


def check_move(current: str, target: str) -> None:
    """Raises FailedPrecondition for an illegal transition (e.g. cancelling a completed job)."""
    if not can_move(current, target):
        raise FailedPrecondition(f"A {current} job cannot become {target}")


@dataclass
class Job:
    id: str
    status: str
    current_stage: str
    attempt: int
    retry_count: int
    total_steps: int
    current_step: int
    current_epoch: int
    progress: float
    hourly_rate: float
    current_cost: float
    final_cost: float | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    estimated_completion_at: datetime | None = None
    error_message: str | None = None
    current_metrics: dict | None = None
    batch_layout: dict | None = None
    # The first point of the current attempt: where the ETA's pace is measured from.
    pace_step: int | None = None
    pace_since: datetime | None = None
    # When the current attempt began (its agent took the job and loads the model): what measured durations count from.
    attempt_started_at: datetime | None = None
    # The step the current attempt resumed after (its checkpoint's), as its plan reported; 0: it started fresh.
    resumed_from_step: int = 0
    # When the job last became queued (created, or handed back for a retry).
    waiting_since: datetime | None = None
    # When its owner was told no agent had taken it; None: not yet (once per job).
    waiting_alerted_at: datetime | None = None
    # Seconds from waiting_since to an agent taking the job, for its last wait; None until one does.
    queue_wait_seconds: float | None = None
    changes: dict = field(default_factory=dict)

    @classmethod
    def from_row(cls, row) -> Job:
        """The job as its stored row (any object with the jobs table's columns as attributes) has it."""
        names = [f for f in cls.__dataclass_fields__ if f not in ("id", "hourly_rate", "changes")]
        return cls(id=str(row.id), hourly_rate=hourly_rate(row.gpu_config), **{n: getattr(row, n) for n in names})

    @property
    def ended(self) -> bool:
        return self.status in TERMINAL

    def _set(self, **fields) -> None:
        for name, value in fields.items():
            setattr(self, name, value)
        self.changes.update(fields)

    def _move(self, target: str, stage: str | None = None) -> None:
        """Raises FailedPrecondition for an illegal move."""
        check_move(self.status, target)
        self._set(status=target, current_stage=stage or target)

    def _began(self) -> None:
        """An attempt's report reached a queued job: the attempt began, whether or
        not its start was seen first (a redelivered start can come after it)."""
        if self.status == "queued":
            self._move("initializing")

    def _run(self) -> None:
        self._began()
        self._move("running", "training")

    def start_attempt(self, attempt: int, batch_layout: dict | None, now: datetime) -> list[str]:
        """An attempt began ``now``: its agent took the job. Its plan follows (plan_attempt).

        Returns ``job.initializing`` when the job was queued (watchers see it
        taken at once, before the model loads); nothing for a start that finds it
        further on. Raises FailedPrecondition for an ended job.
        """
        if self.ended:
            raise FailedPrecondition(f"A {self.status} job starts no attempt")
        # A redelivered assignment (its agent died) is a retry too, even though no failure was reported.
        self._set(attempt=attempt, retry_count=max(self.retry_count, attempt - 1), pace_step=None, pace_since=None,
                  attempt_started_at=now, resumed_from_step=0)
        if batch_layout is not None:
            self._set(batch_layout=batch_layout)
        was_queued = self.status == "queued"
        if was_queued and self.waiting_since is not None:
            self._set(queue_wait_seconds=max(0.0, (now - self.waiting_since).total_seconds()))
        self._began()
        return ["job.initializing"] if was_queued else []

    def plan_attempt(self, attempt: int, total_steps: int, resumed_from_step: int) -> list[str]:
        """The trainer's recipe planned ``total_steps`` from the data it loaded, resuming after
        ``resumed_from_step``: the job counts its progress and ETA against that plan.

        A plan of an earlier attempt than the job's changes nothing. Raises
        FailedPrecondition for an ended job.
        """
        if self.ended:
            raise FailedPrecondition(f"A {self.status} job takes no plan")
        if attempt < self.attempt or total_steps <= 0:
            return []
        self._set(total_steps=total_steps, resumed_from_step=resumed_from_step,
                  progress=progress(self.current_step, total_steps))
        return []

    def record_point(self, step: int, epoch: int, metrics: dict, at: datetime, now: datetime) -> list[str]:
        """A new metric point of ``step``, timed by the trainer ``at``: the job runs, and shows the step.

        Returns ``job.started`` the first time the job runs and ``job.progressed``
        unless the point is older than the step the job shows. Raises
        FailedPrecondition for an ended job.
        """
        events = []
        if self.status != "running":
            first_start = self.started_at is None
            self._run()
            self._set(started_at=self.started_at or now)
            # A job requeued after its agent let it go runs again, but it
            # started once: telling the user again would be a second "Training Started".
            if first_start:
                events.append("job.started")
        if step < self.current_step:
            return events  # a late point of an earlier step: stored, but the job is already past it
        if self.pace_since is None:
            self._set(pace_step=step, pace_since=at)
        self._set(
            current_step=step,
            current_epoch=epoch,
            progress=progress(step, self.total_steps),
            current_metrics=metrics,
            current_cost=cost_so_far(self.started_at, now, self.hourly_rate),
            estimated_completion_at=estimated_completion(self.pace_since, self.pace_step, at, step, self.total_steps),
        )
        return events + ["job.progressed"]

    def complete(self, steps_completed: int | None, now: datetime) -> list[str]:
        """The trainer delivered the adapter after ``steps_completed`` steps (None: the whole plan).

        Raises FailedPrecondition for an ended job.
        """
        if self.status != "running":  # finished before its first point reached us
            self._run()
        self._move("completed")
        started = self.started_at or now
        cost = cost_so_far(started, now, self.hourly_rate)
        # Early stopping ends a job before its planned last step: the job shows the step it reached.
        self._set(progress=100.0, current_step=self.total_steps if steps_completed is None else steps_completed,
                  completed_at=now, started_at=started, current_cost=cost, final_cost=cost,
                  estimated_completion_at=now)
        return ["job.completed"]

    def attempt_failed(self, reason: str, retryable: bool, cancelled: bool, now: datetime) -> list[str]:
        """An attempt ended without an adapter: the job is queued again while retries are left, else fails.

        An attempt stopped because the user cancelled changes nothing: CancelJob
        ended the job already. Raises FailedPrecondition for an ended job.
        """
        if cancelled:
            return []
        self._began()
        if retryable and self.retry_count < MAX_RETRIES:
            self._move("queued", "retrying")
            self._set(retry_count=self.retry_count + 1, error_message=reason, waiting_since=now)
            return []
        return self._end("failed", now, error_message=reason)

    def tick(self, now: datetime) -> list[str]:
        """The clock, while the job runs between steps: its cost so far brought up to ``now``.

        Returns ``job.progressed`` (without a metric point), so billing accrues
        the cost and watchers see it, even when no step arrives for a long
        time; nothing for a job that is not running.
        """
        if self.status != "running":
            return []
        self._set(current_cost=cost_so_far(self.started_at, now, self.hourly_rate))
        return ["job.progressed"]

    def waited_too_long(self, now: datetime) -> list[str]:
        """The job stayed queued past the bound: ``job.waiting_for_agent``, once per job (its owner is told).

        Nothing for a job no longer queued or whose owner was told already.
        """
        if self.status != "queued" or self.waiting_alerted_at is not None:
            return []
        self._set(waiting_alerted_at=now)
        return ["job.waiting_for_agent"]

    def abandon(self, reason: str, now: datetime) -> list[str]:
        """JetStream gave up redelivering the assignment: the job fails.

        No agent was training since its last report, so the cost stops at the
        cost reported then. Raises FailedPrecondition for an ended job.
        """
        self._move("failed")
        self._set(completed_at=now, error_message=reason, final_cost=self.current_cost)
        return ["job.failed"]

    def cancel(self, now: datetime, reason: str | None = None) -> list[str]:
        """Cancelled by its user, or for ``reason`` (a spent budget); raises
        FailedPrecondition when the job already ended."""
        return self._end("cancelled", now, **({"error_message": reason} if reason else {}))

    def _end(self, status: str, now: datetime, **fields) -> list[str]:
        self._move(status)
        cost = cost_so_far(self.started_at, now, self.hourly_rate)
        self._set(completed_at=now, current_cost=cost, final_cost=cost, **fields)
        return [f"job.{status}"]
