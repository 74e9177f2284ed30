"""Queue positions and estimated start and finish (evaluation/runs/queue.py): interactive runs go first, bulk
runs give way between chunks, and times come from the throughput measured on recent runs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from evaluation.models import LanguageModel, ModelVariant, ScoringRun
from evaluation.runs.queue import queue_estimates

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def variant(db) -> ModelVariant:
    model = LanguageModel.objects.create(name="m", source="/nowhere", family="seq2seq")
    return ModelVariant.objects.create(model=model)


def run(variant, *, lane: str, status: str = "queued", total: int, done: int = 0, **fields) -> ScoringRun:
    return ScoringRun.objects.create(
        variant=variant,
        trigger="manual",
        lane=lane,
        status=status,
        total_cells=total,
        done_cells=done,
        **fields,
    )


def seconds(when) -> float | None:
    return None if when is None else (when - NOW).total_seconds()


def test_interactive_runs_wait_for_one_chunk_and_bulk_runs_for_everything_before_them(variant, settings):
    settings.SCORING_CHUNK_CELLS = 100
    run(variant, lane="bulk", status="succeeded", total=10, cells_per_second=10.0)  # measured: 10 cells/s
    bulk_running = run(variant, lane="bulk", status="running", total=1000)
    bulk_queued = run(variant, lane="bulk", total=200)
    interactive = run(variant, lane="interactive", total=50)  # queued last, goes first

    estimates = queue_estimates(now=NOW)
    # One worker (none heard from counts as one): it ends its chunk (100 cells, 10 s), then the approval.
    assert estimates[interactive.id].position == 1
    assert (seconds(estimates[interactive.id].start), seconds(estimates[interactive.id].finish)) == (10, 15)
    # Then the rest of the running bulk run (900 cells, 90 s), then the queued bulk run (200 cells, 20 s).
    assert estimates[bulk_running.id].position is None
    assert seconds(estimates[bulk_running.id].finish) == 105
    assert estimates[bulk_queued.id].position == 2
    assert (seconds(estimates[bulk_queued.id].start), seconds(estimates[bulk_queued.id].finish)) == (105, 125)


def test_without_a_measured_throughput_there_are_positions_but_no_times(variant):
    first = run(variant, lane="interactive", total=10)
    second = run(variant, lane="bulk", total=10)
    estimates = queue_estimates(now=NOW)
    assert [estimates[first.id].position, estimates[second.id].position] == [1, 2]
    assert estimates[first.id].start is estimates[second.id].finish is None


def test_a_models_own_throughput_comes_before_other_models(variant):
    other = ModelVariant.objects.create(
        model=LanguageModel.objects.create(name="other", source="/x", family="seq2seq")
    )
    run(other, lane="bulk", status="succeeded", total=10, cells_per_second=1.0)
    run(variant, lane="bulk", status="succeeded", total=10, cells_per_second=100.0)
    queued = run(variant, lane="interactive", total=100)
    assert seconds(queue_estimates(now=NOW)[queued.id].finish) == 1
