"""Claims on queued work (scoring runs and soft-prompt trainings share them): which delivery of a job may
run it, and which jobs the outbox sweep sends again. Both models have status (queued, running, ...),
claim_token, claimed_by_task, worker, heartbeat_at, attempts, started_at, error and sent_at."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

QUEUED, RUNNING = "queued", "running"


def _stale():
    return timezone.now() - timedelta(seconds=settings.SCORING_LEASE_SECONDS)


def claim(model, pk: int, *, task_id: str, worker: str, **reset) -> uuid.UUID | None:
    """Mark the job running under a new token and return it, or None when this delivery may not run it.

    A delivery may run the job when it is queued, when its holder stopped sending heartbeats, or when it is
    the same message again (the broker redelivers a killed worker's job under the same task id). `reset`
    names progress fields that start over with the attempt."""
    token = uuid.uuid4()
    now = timezone.now()
    claimable = (
        Q(status=QUEUED) | Q(status=RUNNING, heartbeat_at__lt=_stale()) | Q(status=RUNNING, claimed_by_task=task_id)
    )
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


def to_sweep(model) -> list[int]:
    """The outbox sweep's jobs: queued ones the broker never accepted (it was down when they were created)
    and running ones whose worker went silent. A job waiting in a healthy queue is left alone, so a long
    queue is not flooded with copies."""
    unsent_or_stalled = Q(status=QUEUED, sent_at__isnull=True) | Q(status=RUNNING, heartbeat_at__lt=_stale())
    return list(model.objects.filter(unsent_or_stalled).values_list("pk", flat=True))
