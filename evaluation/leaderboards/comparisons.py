"""Two model variants compared on the cells they share (the pages' and the API's paired comparison).

The maths is in evaluation/stats/paired_comparison.py; here the shared cells are read: the (task, phrasing) pairs both
variants have complete results for on the benchmark's tasks their rows average over
(aggregates.counts_in_benchmark), every instance of each task's evaluation sample (published variants: the
instances their source scored; a published variant is paired only with another published one). A
comparison is made on phrasings that are the same for both models: all of them, the benchmark's defaults, or
the held-out ones (a soft prompt against its base). Observed and unobserved depend on the model, so they are
figures within the comparison (each model's own Observed, Unobserved and Gap on the shared phrasings), not
sets to compare on.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.core.cache import cache

from collection.models import Benchmark, Task
from evaluation.leaderboards import aggregates
from evaluation.leaderboards.common_ground import CACHE_SECONDS, cells_of, revisions_by_task
from evaluation.models import BenchmarkSummary, ModelVariant, PhrasingSet, VariantKind
from evaluation.stats import paired_comparison

COMPARABLE_SETS = (PhrasingSet.ALL, PhrasingSet.DEFAULTS, PhrasingSet.HELDOUT)


class NotComparable(ValueError):
    """Why two variants cannot be compared as asked (said to the user as is)."""


@dataclass
class PairedView:
    benchmark: Benchmark
    a: ModelVariant
    b: ModelVariant
    phrasing_set: str
    tasks: list[Task]
    phrasings: int  # shared (task, phrasing) pairs
    result: paired_comparison.Comparison

    def task_rows(self) -> list[tuple[Task, dict[str, paired_comparison.Difference]]]:
        return list(zip(self.tasks, self.result.per_task))


def comparable_variants(benchmark: Benchmark) -> list[ModelVariant]:
    """Every variant with figures on the benchmark, in the leaderboard's order of names."""
    ids = BenchmarkSummary.objects.filter(benchmark=benchmark).values("variant_id")
    return list(
        ModelVariant.objects.filter(id__in=ids).select_related("model").order_by("model__name", "kind", "id")
    )


def compare_variants(
    *, benchmark: Benchmark, a: ModelVariant, b: ModelVariant, phrasing_set: str, version
) -> PairedView:
    if a.id == b.id:
        raise NotComparable("Choose two different models to compare.")
    if (a.kind == VariantKind.IMPORTED) != (b.kind == VariantKind.IMPORTED):
        raise NotComparable(
            "A published variant's accuracies are over the instances its source scored, not this task's "
            "evaluation sample, so it is not paired with a variant scored here. Compare it with another "
            "published variant, or each with the leaderboard."
        )
    if phrasing_set not in COMPARABLE_SETS:
        raise NotComparable(
            f"Compare on one of: {', '.join(COMPARABLE_SETS)}. Observed and unobserved phrasings differ by model; "
            "each model's Observed, Unobserved and Gap are figures within the comparison."
        )
    key = (
        "compare:"
        + hashlib.sha256(repr([benchmark.id, a.id, b.id, phrasing_set, version]).encode()).hexdigest()
    )
    cached = cache.get(key)
    if cached is None:
        cached = _compute(benchmark, a, b, phrasing_set)
        cache.set(key, cached, timeout=CACHE_SECONDS)
    task_ids, phrasings, result = cached
    tasks = Task.objects.in_bulk(task_ids)
    return PairedView(benchmark, a, b, phrasing_set, [tasks[i] for i in task_ids], phrasings, result)


def _compute(benchmark: Benchmark, a: ModelVariant, b: ModelVariant, phrasing_set: str):
    # The tasks their benchmark rows average over (aggregates.counts_in_benchmark).
    cells = cells_of([a.id, b.id], aggregates.counted_in_benchmark(benchmark), phrasing_set)
    shared = revisions_by_task(cells[a.id] & cells[b.id])
    if not shared:
        raise NotComparable(f"{a} and {b} share no scored phrasings on {benchmark.name} ({phrasing_set}).")
    tasks = list(Task.objects.filter(id__in=shared).order_by("name"))
    pairs = [
        (
            aggregates.task_data(a, task, revisions=shared[task.id]),
            aggregates.task_data(b, task, revisions=shared[task.id]),
        )
        for task in tasks
    ]
    try:
        result = paired_comparison.compare(
            pairs, samples=aggregates.BENCHMARK_BOOTSTRAP_SAMPLES, min_phrasings=aggregates.min_phrasings()
        )
    except ValueError as exc:  # results changed between the reads (a refresh under way): try again
        raise NotComparable(f"{exc} Results are being refreshed; try again in a moment.") from exc
    return [t.id for t in tasks], sum(len(r) for r in shared.values()), result
