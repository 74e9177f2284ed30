"""Where a scoring run stands in the queue, and when it should start and finish.

Workers take the interactive lane first and bulk runs give way between chunks (evaluation/models.py
LANE_QUEUES), so the order is: the chunk each worker is on now, then queued interactive runs oldest first,
then what is left of running bulk runs, then queued bulk runs oldest first. Times come from throughput stored
on runs (`cells_per_second`, measured per chunk): the model's recent runs, else any recent runs. They are
estimates: pages say so, and show none until some run has measured a throughput.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import median

from django.conf import settings
from django.utils import timezone

from core import worker_status
from core.jobs import ACTIVE, JobStatus
from evaluation.models import ScoringRun

# How many of a model's latest measured runs its throughput is taken from.
RECENT_RUNS = 10
GPU_QUEUES = ("gpu", "gpu-bulk")


@dataclass(frozen=True)
class Estimate:
    position: int | None  # 1: the next queued run to start; None: running now
    start: datetime | None  # None: no throughput measured yet
    finish: datetime | None


def throughputs() -> dict[int | None, float]:
    """Cells per second per model id (the median of its latest measured runs), and under None the median
    over the latest measured runs of every model, for models not measured yet."""
    rows = list(
        ScoringRun.objects.filter(cells_per_second__isnull=False)
        .order_by("-id")
        .values_list("variant__model_id", "cells_per_second")[: RECENT_RUNS * 20]
    )
    per_model: dict[int | None, list[float]] = {}
    for model_id, rate in rows:
        per_model.setdefault(model_id, [])
        if len(per_model[model_id]) < RECENT_RUNS:
            per_model[model_id].append(rate)
    rates: dict[int | None, float] = {model_id: median(r) for model_id, r in per_model.items()}
    if rows:
        rates[None] = median(rate for _, rate in rows[:RECENT_RUNS])
    return rates


def gpu_workers() -> int:
    """GPU workers heard from (busy or idle); at least one, so a queue with no worker still gets an order."""
    states = worker_status.worker_states()
    alive = [
        w
        for w in states
        if w.state in ("busy", "idle")
        and (not w.beat.queues or any(q in w.beat.queues.split(",") for q in GPU_QUEUES))
    ]
    return max(1, len(alive))


def queue_estimates(*, now: datetime | None = None) -> dict[int, Estimate]:
    """An estimate for every queued or running run, by run id."""
    now = now or timezone.now()
    active = list(
        ScoringRun.objects.filter(status__in=ACTIVE)
        .order_by("created_at", "id")
        .values("id", "lane", "status", "total_cells", "done_cells", "variant__model_id")
    )
    if not active:
        return {}
    rates = throughputs()
    chunk = settings.SCORING_CHUNK_CELLS

    def seconds(row, cells: int) -> float | None:
        rate = rates.get(row["variant__model_id"], rates.get(None))
        return cells / rate if rate else None

    def at(offset: float | None) -> datetime | None:
        return None if offset is None else now + timedelta(seconds=offset)

    running = [row for row in active if row["status"] == JobStatus.RUNNING]
    # Each worker is free once the chunk it is on ends (offsets in seconds from now; None: unknown).
    free: list[float] = []
    unknown = False
    leftovers = []  # running bulk runs: what is left after their current chunk
    finish: dict[int, float | None] = {}
    for row in running:
        remaining = max(0, row["total_cells"] - row["done_cells"])
        current = remaining if row["lane"] == ScoringRun.Lane.INTERACTIVE else min(remaining, chunk)
        took = seconds(row, current)
        unknown |= took is None
        free.append(took or 0.0)
        finish[row["id"]] = took
        if remaining > current:
            leftovers.append((row, remaining - current))
    free += [0.0] * max(0, gpu_workers() - len(running))
    heapq.heapify(free)

    queued = [row for row in active if row["status"] == JobStatus.QUEUED]
    interactive = [(row, None) for row in queued if row["lane"] == ScoringRun.Lane.INTERACTIVE]
    bulk = [(row, None) for row in queued if row["lane"] != ScoringRun.Lane.INTERACTIVE]
    estimates: dict[int, Estimate] = {}
    position = 0
    for row, left in [*interactive, *leftovers, *bulk]:
        cells = left if left is not None else max(0, row["total_cells"] - row["done_cells"])
        begin = heapq.heappop(free)
        took = seconds(row, cells)
        unknown |= took is None
        end = begin + (took or 0.0)
        heapq.heappush(free, end)
        if left is not None:
            finish[row["id"]] = None if unknown else end
            continue
        position += 1
        estimates[row["id"]] = Estimate(
            position=position,
            start=None if unknown else at(begin),
            finish=None if unknown else at(end),
        )
    for row in running:
        estimates[row["id"]] = Estimate(position=None, start=None, finish=at(finish[row["id"]]))
    return estimates
