"""Worker heartbeats: each Celery worker keeps one WorkerBeat row saying that it is alive and what it is doing,
so the status page can tell a busy worker from a missing one.

A ping cannot: with `--pool solo` a worker runs one task at a time, and a worker scoring a long run answers
its ping only after the run. So the worker writes instead: when it starts and stops, when a task starts and
ends, on Celery's own heartbeats while idle (`heartbeat_sent`, every 2 s; written at most every
BEAT_EVERY_SECONDS) and on every job heartbeat (each batch) while busy. Celery's `inspect` would ask the
workers over the broker, which a busy solo worker cannot answer either.
"""

from __future__ import annotations

import json
import time

from django.db import DatabaseError
from django.utils import timezone

from core.models import WorkerBeat

# Celery's heartbeat comes every 2 s; a row written every 10 s is fresh enough and 5x fewer writes.
BEAT_EVERY_SECONDS = 10

_me: str | None = None  # this process's worker name, once it is a worker
_last_beat = 0.0


def _write(name: str, **fields) -> None:
    global _last_beat
    now = timezone.now()
    try:
        updated = WorkerBeat.objects.filter(name=name).update(seen_at=now, **fields)
        if not updated:
            WorkerBeat.objects.create(name=name, seen_at=now, **{"started_at": now, **fields})
    except DatabaseError:
        return  # a heartbeat must never break the worker; the next one tries again
    _last_beat = time.monotonic()


def worker_started(*, name: str, queues: list[str]) -> None:
    global _me
    _me = name
    _write(name, queues=",".join(queues)[:500], started_at=timezone.now(), stopped_at=None, task="")


def worker_stopped() -> None:
    if _me is not None:
        _write(_me, stopped_at=timezone.now(), task="", task_since=None)


def task_started(*, name: str, task: str, args: tuple) -> None:
    global _me
    _me = name
    # JSON, so the status page can find the job a task's first argument names (core/worker_status.py).
    shown = json.dumps(list(args), default=str)
    _write(name, task=task[:200], task_args=shown[:200], task_since=timezone.now(), stopped_at=None)


def task_finished(*, name: str) -> None:
    _write(name, task="", task_args="", task_since=None)


def beat() -> None:
    """A sign of life from this process, if it is a worker: from Celery's heartbeats while it is idle and
    from job heartbeats while it is busy. Throttled to one write per BEAT_EVERY_SECONDS."""
    if _me is not None and time.monotonic() - _last_beat >= BEAT_EVERY_SECONDS:
        _write(_me)
