"""Jobs: each step message's life, read back from the timeline events it left.

A job is one dramatiq message. Its id is the message id; its status follows seed 003's
vocabulary (``queued``, ``started``, ``finished``, ``failed``) plus ``skipped`` for a
message a worker dropped because its item had moved on or was cancelled (or, once started,
because the item was cancelled while it ran or its source had changed since step 1), ``refused`` for
one whose work ran but whose status write was refused (another delivery won, or the item
was cancelled meanwhile), and ``purged`` for one an operator purged from its queue.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from autolog.errors import JobNotFound
from autolog.store.models import TimelineEvent
from autolog.store.views import aware

#: Job statuses, in seed 003's words.
JOB_STATUSES = ("queued", "started", "finished", "failed", "skipped", "refused", "purged")

#: The job status each timeline event leaves a message in.
_STATUS_AFTER = {
    "queued": "queued", "retried": "queued", "started": "started", "succeeded": "finished",
    "refused": "refused", "failed": "failed", "dead_lettered": "failed", "skipped": "skipped", "purged": "purged",
    "stopped": "skipped", "source_changed": "skipped",
}

#: Why a job ended skipped, for the events whose detail gives no reason.
_SKIP_REASONS = {"source_changed": "the source changed since step 1; the item starts again at step 1"}

#: Events that end a message's life (a ``failed`` one ends it only when nothing follows).
_ENDINGS = frozenset({"succeeded", "refused", "dead_lettered", "skipped", "failed", "purged", "stopped",
                      "source_changed"})

#: How many messages ``list`` examines at most to fill one filtered page.
SCAN_LIMIT = 5_000


@dataclass(frozen=True)
class JobView:
    """One message: its step, its item, where it stands and when it moved."""

    job_id: str
    status: str
    item_id: str
    step: str | None
    attempts: int
    created_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    error: dict[str, Any] | None
    meta: dict[str, Any]
    #: What the step returned (``{"item_id", "status", ...facts}``) when it finished; else None.
    result: Any = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict in seed 003's shape, with ``result`` left to the caller."""
        return {
            "job_id": self.job_id, "status": self.status, "item_id": self.item_id, "step": self.step,
            "attempts": self.attempts,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "error": self.error, "meta": self.meta,
        }


def job_from_events(job_id: str, events: Sequence[TimelineEvent]) -> JobView:
    """Fold one message's events, oldest first, into a ``JobView``."""
    status = "queued"
    created = started = ended = None
    error: dict[str, Any] | None = None
    attempts = 0
    meta: dict[str, Any] = {}
    result: Any = None
    for event in events:
        status = _STATUS_AFTER.get(event.event, status)
        if event.event in ("queued", "retried") and created is None:
            created = aware(event.at)
        if event.event == "started":
            started, ended = aware(event.at), None
            attempts = max(attempts, event.attempt or 1)
        if event.event in _ENDINGS:
            ended = aware(event.at)
        if event.event == "succeeded":
            result = (event.detail or {}).get("result")
        if event.event == "failed":
            error = {"type": event.error_type, "message": event.error_message, "attempt": event.attempt}
        if event.event in ("skipped", "refused", "stopped", "source_changed"):
            meta["reason"] = ((event.detail or {}).get("reason") or _SKIP_REASONS.get(event.event)
                              or "the item's status write was refused")
        if event.worker:
            meta["worker"] = event.worker
        if event.run_ms is not None:
            meta["run_ms"] = event.run_ms
        if event.wait_ms is not None:
            meta["wait_ms"] = event.wait_ms
    if status in ("queued", "started"):
        ended = None
    first = events[0]
    return JobView(job_id=job_id, status=status, item_id=first.item_id, step=first.step, attempts=attempts,
                   created_at=created or aware(first.at), started_at=started, ended_at=ended,
                   error=error if status in ("failed", "queued") else None, meta=meta,
                   result=result if status == "finished" else None)


class Jobs:
    """Reads of jobs from the timeline."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def get(self, job_id: str) -> JobView:
        """Return one job.

        Raises:
            JobNotFound: no event names that message id.
        """
        with self._sessions() as session:
            events = list(session.scalars(
                select(TimelineEvent).where(TimelineEvent.message_id == job_id).order_by(TimelineEvent.id)))
        if not events:
            raise JobNotFound(job_id)
        return job_from_events(job_id, events)

    def list(self, *, status: str | None = None, limit: int = 50) -> list[JobView]:
        """Return the most recently active jobs, newest first, optionally of one status.

        The newest events are read backwards by id, a page at a time, until ``limit`` jobs
        are found or ``SCAN_LIMIT`` events were read, so the cost follows the page asked
        for, not the size of the timeline.
        """
        found: list[JobView] = []
        seen: set[str] = set()
        before: int | None = None
        read = 0
        page = max(4 * limit, 200)
        with self._sessions() as session:
            while len(found) < limit and read < SCAN_LIMIT:
                # No filter on message_id: it would lead the planner to that index and a sort
                # of every event; events without one (user actions) are skipped below.
                query = select(TimelineEvent.id, TimelineEvent.message_id).order_by(TimelineEvent.id.desc()).limit(page)
                if before is not None:
                    query = query.where(TimelineEvent.id < before)
                rows = session.execute(query).all()
                if not rows:
                    break
                read += len(rows)
                before = rows[-1][0]
                fresh = [str(message_id) for _, message_id in rows if message_id and message_id not in seen]
                ids = list(dict.fromkeys(fresh))
                seen.update(ids)
                if not ids:
                    continue
                events: dict[str, list[TimelineEvent]] = {job_id: [] for job_id in ids}
                for event in session.scalars(
                        select(TimelineEvent).where(TimelineEvent.message_id.in_(ids))
                        .order_by(TimelineEvent.id)):
                    events[str(event.message_id)].append(event)
                for job_id in ids:
                    job = job_from_events(job_id, events[job_id])
                    if status is None or job.status == status:
                        found.append(job)
        return found[:limit]
