"""Leaderboards on common ground: rows are ranked on the cells they share, never on different things.

A row's cells are its complete per-phrasing results on the benchmark's tasks that count for it, as (task,
revision) pairs (aggregates.counts_in_benchmark: the top-level tasks for a row scored here, every task with
published results for a published row); every complete result covers the task's whole evaluation sample,
so sharing a (task, phrasing) pair means sharing every instance of it. A published row's results are over the
instances its source scored, not the evaluation sample, so it shares cells with published rows alone, and a
row scored here with rows scored here alone (as comparisons.comparison_check pairs them). The ground is
chosen greedily and said on the page:
1. rows scored here before published rows (when there are rows scored here, the published ones come apart),
   each kind in order of how many cells they have (most first, then by name);
2. the first row's cells are the ground; each next row joins when the ground's intersection with its cells
   keeps at least COMMON_GROUND_MIN_SHARE of the first row's cells (the ground becomes that intersection;
   a row of the other kind, published or scored here, keeps none);
   otherwise the row has partial coverage: it is left out of the ranking, and shown apart, flagged, on request.
   A ranked row with no figures on the ground (none of its own observed phrasings in it, say) joins them.
Each ranked row's figures are then computed on the ground (the stored summaries when its cells are the
ground already, otherwise from its predictions restricted to the ground), and each row reports its own
coverage. Phrasing sets (observed, unobserved, ...) are taken within the ground, per model.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.db.models import Exists, OuterRef, Q

from collection.models import Benchmark, Collection, Instance, Task
from evaluation.leaderboards import adaptive_estimates, aggregates
from evaluation.models import (
    BenchmarkSummary,
    ModelVariant,
    PhrasingResult,
    PhrasingSet,
    TaskSummary,
    VariantKind,
    named_variants,
)
from evaluation.split import is_heldout
from evaluation.stats import metrics, ranking, replicates

CACHE_SECONDS = 3600  # keyed on the data version, so a refresh makes a new key

Cell = tuple[int, int]  # (task id, revision id)


@dataclass
class Coverage:
    """A row's own cells, and how much of the ground they cover."""

    cells: int
    tasks: int
    shared: int  # cells also in the ground
    ground: int

    @property
    def share_of_ground(self) -> float:
        return self.shared / self.ground if self.ground else 0.0

    def as_dict(self) -> dict:
        return {
            "cells": self.cells,
            "tasks": self.tasks,
            "shared_with_ground": self.shared,
            "share_of_ground": round(self.share_of_ground, 4),
        }


@dataclass
class Ground:
    """The cells every ranked row has: how many tasks and phrasings, and which rows were left out."""

    cells: frozenset[Cell]
    ranked: list[int] = field(default_factory=list)  # variant ids
    partial: list[int] = field(default_factory=list)
    min_share: float = 0.5
    published: bool = False  # whose instances: published rows' sources' (True), or the evaluation samples

    @property
    def tasks(self) -> int:
        return len({task for task, _ in self.cells})

    @property
    def phrasings(self) -> int:
        return len(self.cells)

    def as_dict(self) -> dict:
        return {
            "tasks": self.tasks,
            "phrasings": self.phrasings,
            "ranked_rows": len(self.ranked),
            "partial_rows": len(self.partial),
            "instances": "published rows' sources'" if self.published else "each task's evaluation sample",
            "rule": (
                "Rows are ranked on the (task, phrasing) pairs scored for all of them, every instance of each "
                f"task's evaluation sample; a row that would keep less than {self.min_share:.0%} of that ground "
                "has partial coverage and is listed apart, on request. Published rows' results are over the "
                "instances their source scored, so they share pairs with published rows alone, and rows "
                "scored here with rows scored here alone."
            ),
        }


def choose_ground(
    cells_by_row: dict[int, set[Cell]], order: list[int], min_share: float, published: set[int] = frozenset()
) -> Ground:
    """The greedy rule of the module docstring, on rows given in `order` (most cells first). The share is
    measured against the first row's cells, so however many rows join, the ground keeps at least that share
    of the largest row's cells. `published`: the published rows, which share cells with one another alone."""
    ground: set[Cell] | None = None
    first = 0
    ranked, partial = [], []
    for row in order:
        cells = cells_by_row[row]
        if ground is None:
            ground, first, ranked = set(cells), len(cells), [row]
            continue
        shared = ground & cells if (row in published) == (ranked[0] in published) else set()
        if shared and len(shared) >= min_share * first:
            ground = shared
            ranked.append(row)
        else:
            partial.append(row)
    return Ground(
        frozenset(ground or ()), ranked, partial, min_share, bool(ranked) and ranked[0] in published
    )


@dataclass
class Board:
    ground: Ground
    rows: list[tuple[ModelVariant, dict, Coverage]]  # ranked rows: variant, figures on the ground, coverage
    partial: list[tuple[ModelVariant, dict, Coverage]]  # own figures (not on the ground), flagged
    # Rows with an estimated task (evaluation/leaderboards/adaptive_estimates.py): their figures are estimates over every phrasing
    # they have scored part of, so they are neither on the ground nor ranked; always shown, flagged.
    estimated: list[tuple[ModelVariant, dict, Coverage]] = field(default_factory=list)
    # Per figure, which pairs of ranked rows (in `rows` order) the paired bootstrap can tell apart
    # (evaluation/stats/ranking.py): the rank intervals and tie groups of whichever figure the page sorts by.
    separable: dict[str, np.ndarray] = field(default_factory=dict)

    def standings(self, figure: str, *, descending: bool = True) -> list[ranking.Standing | None]:
        """The ranked rows' rank intervals and tie groups on `figure`, in `rows` order."""
        apart = self.separable.get(figure)
        if apart is None:
            return [None] * len(self.rows)
        return ranking.standings([f.get(figure) for _, f, _ in self.rows], apart, descending=descending)


def board(*, benchmark: Benchmark, phrasing_set: str, task_kind: str, version) -> Board:
    """The leaderboard's rows on common ground (cached per data version)."""
    return _cached(
        ["benchmark", benchmark.id, phrasing_set, task_kind, version],
        lambda: _build_benchmark(benchmark, phrasing_set, task_kind),
    )


def task_board(*, task: Task, phrasing_set: str, version) -> Board:
    """One task's rows on common ground: the same rule on the task's phrasings (cached per data version)."""
    return _cached(["task", task.id, phrasing_set, version], lambda: _build_task(task, phrasing_set))


def _cached(key_parts: list, build) -> Board:
    # "-2": boards cached before published and scored rows stopped sharing cells hold a shorter ground.
    key = "common-ground-2:" + hashlib.sha256(repr(key_parts).encode()).hexdigest()
    cached = cache.get(key)
    if cached is None:
        cached = build()
        cache.set(key, cached, timeout=CACHE_SECONDS)
    return _hydrate(cached)


def _build_benchmark(benchmark: Benchmark, phrasing_set: str, task_kind: str) -> dict:
    summaries = named_variants(
        BenchmarkSummary.objects.filter(benchmark=benchmark, phrasing_set=phrasing_set, task_kind=task_kind)
    )
    # The tasks each row averages over: aggregates.counts_in_benchmark, the one rule for benchmark rows.
    counted = aggregates.counted_in_benchmark(benchmark)
    if task_kind:
        counted &= Q(task__kind=task_kind)
    per_task = TaskSummary.objects.filter(counted, phrasing_set=phrasing_set)
    # Every task summary of the variants with an estimated task, in one query.
    estimated_variants = per_task.filter(figures__estimated=True).values("variant_id")
    by_variant: dict[int, list[TaskSummary]] = {}
    for row in named_variants(per_task.filter(variant_id__in=estimated_variants)).select_related("task"):
        by_variant.setdefault(row.variant_id, []).append(row)
    # The estimated tasks' posterior draws (their summaries' replicates), read for those rows alone.
    blobs = dict(
        TaskSummary.with_replicates.filter(
            id__in=[r.id for rows in by_variant.values() for r in rows if r.figures.get("estimated")],
            replicates__isnull=False,
        ).values_list("id", "replicates")
    )

    def draws(row: TaskSummary):
        blob = blobs.get(row.id)  # estimated tasks' alone
        return replicates.unpack(blob) if blob is not None else None

    estimated = {
        variant_id: (
            rows[0].variant,
            adaptive_estimates.benchmark_figures([r.figures for r in rows], [draws(r) for r in rows])
            | {"tasks_counted": sorted(r.task.slug for r in rows)},
        )
        for variant_id, rows in by_variant.items()
    }
    exact = {s.variant_id: s for s in summaries if s.variant_id not in by_variant}
    loaded: dict = {}

    def on_ground(variant, ground, own):
        # Every ranked row shares the ground: its tasks and the rows' stored summaries on them are read once.
        if not loaded:
            task_ids = {task for task, _ in ground}
            # In slug order, as stored benchmark rows average them (aggregates._counted_summaries).
            loaded["tasks"] = list(Task.objects.filter(id__in=task_ids).order_by("slug"))
            loaded["stored"] = _stored_summaries(list(exact), task_ids, phrasing_set)
        stored = loaded["stored"].get(variant.id, {})
        return _figures_on_ground(variant, ground, own, phrasing_set, stored, loaded["tasks"])

    return _build(exact, counted, phrasing_set, on_ground, estimated)


def _build_task(task: Task, phrasing_set: str) -> dict:
    # With their replicates: a ranked row's draws (for rank intervals) come from its stored summary.
    summaries = named_variants(TaskSummary.with_replicates.filter(task=task, phrasing_set=phrasing_set))

    def on_ground(variant, cells, own):
        summary = exact[variant.id]
        if own == cells and replicates.is_current(summary.replicates):
            return summary.figures, [aggregates.stored_part(summary)]
        data = aggregates.task_data(variant, task, revisions={revision for _, revision in cells})
        subset = aggregates.subset(data, phrasing_set) if data else None
        if subset is None:
            return None, []
        return aggregates.task_figures(task, subset), [aggregates.task_part(task, subset)]

    exact = {s.variant_id: s for s in summaries if not s.figures.get("estimated")}
    estimated = {s.variant_id: (s.variant, s.figures) for s in summaries if s.figures.get("estimated")}
    return _build(exact, Q(task=task), phrasing_set, on_ground, estimated)


def _build(summaries: dict, where: Q, phrasing_set: str, figures_on_ground, estimated: dict) -> dict:
    """Choose the ground among the rows that have summaries, and each ranked row's figures on it; the
    `estimated` rows ({variant id: (variant, figures)}) are listed apart with their coverage.

    `figures_on_ground(variant, ground cells, its own cells)` gives the row's figures on the ground and the
    tasks' parts (metrics.TaskPart) they average; the parts' replicates tell which rows are separable."""
    cells_by_row = cells_of([*summaries, *estimated], where, phrasing_set)
    variants = {v: s.variant for v, s in summaries.items()} | {v: e[0] for v, e in estimated.items()}
    published = {v for v, variant in variants.items() if variant.kind == VariantKind.IMPORTED}
    # Rows scored here lead whenever there are any: they are what the benchmark measures, and a published row
    # with more cells (subtasks, phrasings retired here) would otherwise put every one of them apart.
    order = sorted(
        summaries, key=lambda v: (v in published, -len(cells_by_row[v]), str(summaries[v].variant))
    )
    ground = choose_ground(cells_by_row, order, settings.COMMON_GROUND_MIN_SHARE, published)

    def coverage(variant_id: int) -> dict:
        cells = cells_by_row[variant_id]
        return {
            "cells": len(cells),
            "tasks": len({task for task, _ in cells}),
            "shared": len(cells & ground.cells) if (variant_id in published) == ground.published else 0,
            "ground": len(ground.cells),
        }

    rows, draws = [], []
    for variant_id in list(ground.ranked):
        summary = summaries[variant_id]
        figures, parts = figures_on_ground(summary.variant, ground.cells, cells_by_row[variant_id])
        if cells_by_row[variant_id] == ground.cells:
            figures = summary.figures  # as stored: the same figures, with no rounding drift
        if figures is not None:
            rows.append((summary.variant, figures, coverage(variant_id)))
            # The row's draws of each figure, averaged over its tasks as its interval averages them.
            draws.append(metrics.macro_replicates(parts, list(parts[0].replicates)) if parts else {})
        else:  # nothing of this phrasing set on the ground: shown apart, on its own cells
            ground.ranked.remove(variant_id)
            ground.partial.append(variant_id)
    partial = [(summaries[v].variant, summaries[v].figures, coverage(v)) for v in ground.partial]
    apart = [(variant, figures, coverage(v)) for v, (variant, figures) in estimated.items()]
    return {
        "ground": (sorted(ground.cells), ground.ranked, ground.partial, ground.min_share, ground.published),
        "rows": rows,
        "partial": partial,
        "estimated": sorted(apart, key=lambda row: str(row[0])),
        "separable": _separable(rows, draws),
    }


def _separable(rows: list, draws: list[dict[str, np.ndarray]]) -> dict[str, bytes]:
    """For each figure every ranked row has draws of, the pairs of rows the paired bootstrap separates
    (ranking.separable), packed as bits for the cache."""
    if not rows:
        return {}
    names = set.intersection(*(set(d) for d in draws))
    packed = {}
    for name in sorted(names):
        points = np.array([np.nan if f.get(name) is None else f[name] for _, f, _ in rows], dtype=float)
        apart = ranking.separable(points, np.stack([d[name] for d in draws]))
        packed[name] = np.packbits(apart).tobytes()
    return packed


def cells_of(variant_ids: list[int], where: Q, phrasing_set: str) -> dict[int, set[Cell]]:
    """Each variant's cells where `where` (a filter on PhrasingResult: one task, or the tasks that count in a
    benchmark's rows) holds: its complete results, as (task, revision), of the phrasing set where membership
    is the same for every model (set_filter)."""
    cells: dict[int, set[Cell]] = {variant_id: set() for variant_id in variant_ids}
    results = PhrasingResult.objects.filter(where, variant_id__in=variant_ids, complete=True).values_list(
        "variant_id",
        "task_id",
        "revision_id",
        "revision__instruction__stable_key",
        "revision__instruction__collection__kind",
    )
    in_set = set_filter(phrasing_set)
    for variant_id, task_id, revision_id, stable_key, collection_kind in results.iterator(chunk_size=10000):
        if in_set(stable_key, collection_kind):
            cells[variant_id].add((task_id, revision_id))
    return cells


def revisions_by_task(cells) -> dict[int, set[int]]:
    """Cells grouped as task id -> revision ids."""
    by_task: dict[int, set[int]] = {}
    for task_id, revision_id in cells:
        by_task.setdefault(task_id, set()).add(revision_id)
    return by_task


def set_filter(phrasing_set: str):
    """Which cells count for a phrasing set whose membership is the same for every model (held out, the
    benchmark's defaults). Observed and unobserved depend on the model, so for them every cell counts and
    each row takes its own observed or unobserved phrasings within the ground."""
    if phrasing_set in (PhrasingSet.HELDOUT, PhrasingSet.HELDOUT_UNOBSERVED):
        return lambda stable_key, kind: is_heldout(stable_key)
    if phrasing_set == PhrasingSet.DEFAULTS:
        return lambda stable_key, kind: kind == Collection.Kind.BENCHMARK_DEFAULT
    return lambda stable_key, kind: True


def _stored_summaries(
    variant_ids: list[int], task_ids: set[int], phrasing_set: str
) -> dict[int, dict[int, TaskSummary]]:
    """The variants' stored task summaries with usable replicates, as variant id -> task id -> summary."""
    stored: dict[int, dict[int, TaskSummary]] = {}
    for s in TaskSummary.with_replicates.filter(
        variant_id__in=variant_ids, task_id__in=task_ids, phrasing_set=phrasing_set
    ):
        # An estimated task's replicates are posterior draws, not bootstrap replicates: never mixed in here.
        # Replicates stored under other figures (replicates.is_current) are recomputed instead.
        if replicates.is_current(s.replicates) and not s.figures.get("estimated"):
            stored.setdefault(s.variant_id, {})[s.task_id] = s
    return stored


def _figures_on_ground(
    variant: ModelVariant,
    ground: frozenset[Cell],
    own: set[Cell],
    phrasing_set: str,
    stored: dict[int, TaskSummary],
    tasks: list[Task],
) -> tuple[dict | None, list[metrics.TaskPart]]:
    """The variant's benchmark figures on the ground's cells only, and the tasks' parts they average: a task
    (of `tasks`, the ground's) where the ground holds all of the row's cells uses the task's stored summary
    (`stored`, by task id); any other task is recomputed from its predictions. When the row's cells are the
    ground, only the parts: _build keeps the row's stored figures."""
    by_task, own_by_task = revisions_by_task(ground), revisions_by_task(own)
    parts, chances, counted = [], [], []
    for task in tasks:
        summary = stored.get(task.id)
        if summary is not None and own_by_task.get(task.id) == by_task[task.id]:
            parts.append(aggregates.stored_part(summary))
            chances.append(summary.figures.get("chance"))
            counted.append(task.slug)
            continue
        data = aggregates.task_data(variant, task, revisions=by_task[task.id])
        subset = aggregates.subset(data, phrasing_set) if data else None
        if subset is not None:
            parts.append(aggregates.task_part(task, subset))
            chances.append(summary.figures.get("chance") if summary else aggregates.chance_level(task))
            counted.append(task.slug)
    if own == ground:
        return None, parts
    return (aggregates.benchmark_figures(parts, chances, counted) if parts else None), parts


def _hydrate(cached: dict) -> Board:
    """The cached board (variants are pickled with their model, so a cache hit needs no query)."""
    cells, ranked, partial, min_share, published = cached["ground"]
    ground = Ground(frozenset(map(tuple, cells)), list(ranked), list(partial), min_share, published)
    n = len(cached["rows"])
    separable = {
        name: np.unpackbits(np.frombuffer(bits, dtype=np.uint8), count=n * n).reshape(n, n).astype(bool)
        for name, bits in cached.get("separable", {}).items()
    }

    def rows(entries):
        return [(variant, figures, Coverage(**cov)) for variant, figures, cov in entries]

    return Board(ground, rows(cached["rows"]), rows(cached["partial"]), rows(cached["estimated"]), separable)


@dataclass
class CountedTask:
    """A task a published row averages over, and why it might surprise: held here only as published results
    (no instances), or filed here as a subtask."""

    slug: str
    name: str
    has_instances: bool
    parent: str | None  # the parent task's slug, for a subtask


def published_tasks(benchmark: Benchmark, figures: list[dict]) -> list[CountedTask]:
    """The tasks the given published rows' figures average over (the union of their `tasks_counted`), for
    the page's statement of aggregates.TASKS_RULE."""
    slugs = {slug for row in figures for slug in row.get("tasks_counted") or ()}
    eval_instances = Instance.objects.filter(
        Q(task=OuterRef("pk")) | Q(task__parent=OuterRef("pk")), split=Instance.Split.EVAL
    )
    tasks = (
        Task.objects.filter(benchmark=benchmark, slug__in=slugs)
        .annotate(has_instances=Exists(eval_instances))
        .select_related("parent")
        .order_by("slug")
    )
    return [
        CountedTask(task.slug, task.name, task.has_instances, task.parent.slug if task.parent else None)
        for task in tasks
    ]


def below_chance(figures: dict) -> bool:
    """True when the row's accuracy is not above chance: its AvgP interval reaches the chance level."""
    chance, avgp = figures.get("chance"), figures.get("avgp")
    if chance is None or avgp is None:
        return False
    low = (figures.get("ci") or {}).get("avgp", (avgp, avgp))[0]
    return low <= chance
