"""Claims on queued work (scoring runs and soft-prompt trainings share them): which delivery of a job may
run it, which jobs the outbox sweep sends again, and what a job does when the database goes away under it.
Both models are LeasedJobs (evaluation/models.py) with a status of queued, running, failed, ..."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

log = logging.getLogger(__name__)

QUEUED, RUNNING, FAILED = "queued", "running", "failed"
# Server states that mean the connection is gone (shut down by an admin or a crash, or still starting up),
# beside SQLSTATE class 08 (connection exceptions) and client-side failures, which carry no state at all.
CONNECTION_STATES = ("57P01", "57P02", "57P03")


class DatabaseInterrupted(Exception):
    """The database went away while a job held its claim. `token` is that claim: the job's own retry passes it
    back to claim() to carry on, which a broker's redelivery of the same message cannot do."""

    def __init__(self, message: str, token: uuid.UUID) -> None:
        super().__init__(message)
        self.token = token


def _stale():
    return timezone.now() - timedelta(seconds=settings.SCORING_LEASE_SECONDS)


def claim(
    model, pk: int, *, task_id: str, worker: str, resume_token: str | uuid.UUID | None = None, **reset
) -> uuid.UUID | None:
    """Mark the job running under a new token and return it, or None when this delivery may not run it.

    A delivery may run the job when it is queued, when its holder stopped sending heartbeats (a killed
    worker), or when it is the holder's own retry after a database interruption (`resume_token` is the claim
    it held). A redelivery of a message whose worker is still running gets None: Redis redelivers an
    unacknowledged message after CELERY_VISIBILITY_TIMEOUT even to a live worker, and taking over would
    restart a long training every time. If that worker dies, the lease lapses and the sweep sends the job.
    `reset` names progress fields that start over with the attempt."""
    token = uuid.uuid4()
    now = timezone.now()
    claimable = Q(status=QUEUED) | Q(status=RUNNING, heartbeat_at__lt=_stale())
    if resume_token:
        claimable |= Q(status=RUNNING, claim_token=resume_token)
    claimed = model.objects.filter(claimable, pk=pk).update(
        status=RUNNING,
        claim_token=token,
        claimed_by_task=task_id[:100],
        worker=worker[:200],
        heartbeat_at=now,
        attempts=F("attempts") + 1,
        started_at=Coalesce("started_at", Value(now)),
        error="",
        **reset,
    )
    return token if claimed else None


def release(model, pk: int, token: uuid.UUID) -> None:
    """Hand a job whose database went away back to the queue, for the task's retry. If the database is down
    too, the job stays held by this claim, which the retry resumes (should the retry be lost, the lease
    lapses for the sweep)."""
    try:
        model.objects.filter(pk=pk, claim_token=token, status=RUNNING).update(status=QUEUED, claim_token=None)
    except (OperationalError, InterfaceError):
        log.warning("Could not release %s %s; its lease will lapse.", model._meta.verbose_name, pk)


def is_running(model, pk: int) -> bool:
    return model.objects.filter(pk=pk, status=RUNNING).exists()


def to_sweep(model) -> list[int]:
    """The outbox sweep's jobs: queued ones the broker never accepted (it was down when they were created)
    and running ones whose worker went silent. A job waiting in a healthy queue is left alone, so a long
    queue is not flooded with copies."""
    unsent_or_stalled = Q(status=QUEUED, sent_at__isnull=True) | Q(status=RUNNING, heartbeat_at__lt=_stale())
    return list(model.objects.filter(unsent_or_stalled).values_list("pk", flat=True))


def connection_lost(exc: Exception) -> bool:
    """Whether a database error means the server cannot be reached (down, restarting, the network), which
    only waiting cures, rather than an error it answered with (a statement timeout, a full disk)."""
    if isinstance(exc, InterfaceError):
        return True
    if not isinstance(exc, OperationalError):
        return False
    state = getattr(exc.__cause__, "sqlstate", None)
    return state is None or state.startswith("08") or state in CONNECTION_STATES


def fail_handed_back(model, pk: int, token: str | None, error: str) -> None:
    """Fail a job that a database error keeps interrupting, if it is still the one this chain handed back."""
    ours = Q(status=QUEUED) | (Q(status=RUNNING, claim_token=token) if token else Q(pk__in=[]))
    model.objects.filter(ours, pk=pk).update(
        status=FAILED, error=error[:5000], finished_at=timezone.now(), claim_token=None
    )


def mark_unsent(model, pk: int) -> None:
    """A job whose retry never reached the broker goes back to the outbox, for the sweep to send."""
    try:
        model.objects.filter(pk=pk, status__in=[QUEUED, RUNNING]).update(sent_at=None)
    except (OperationalError, InterfaceError):
        pass  # the database is down too: a running job's lease lapses and the sweep sends it all the same
