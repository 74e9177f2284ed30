"""Budgeted evaluation on the Django side: which cells an adaptive run scores next, and the estimated figures
of a task that such a run has sampled but no run has finished (the maths is evaluation/stats/estimation.py's).

An adaptive run scores cells in rounds, one round per chunk of its job. The first half of its budget is a
balanced design (every phrasing and instance covered before any gets a second cell); each later round fits
the estimator to every cell the variant has on the task and gives more cells to the phrasings whose
accuracy is least certain (estimation.choose_cells). It stops at its budget, when its phrasings have no
cell left, or when the figures' 95% intervals are narrow enough (ADAPTIVE_TARGET_WIDTH). Its cells are
ordinary predictions, so an exhaustive run later computes only the others.

A task is *estimated* for a variant while one of its scored phrasings is incomplete and was sampled by an
adaptive run: its figures then come from the estimator over every scored phrasing (each partly observed
row completed by posterior draws), marked `estimated` with the share of cells scored. An ordinary run's
phrasing in progress does not make a task estimated: its figures stay those of its complete phrasings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from django.conf import settings

from collection.models import Instance, InstructionRevision, Task
from collection.selectors import task_eval_sample_ids
from evaluation.models import ModelVariant, PhrasingResult, Prediction, ResultSource, RunMode, ScoringRun
from evaluation.stats import estimation, figure_registry, metrics

# The figures whose intervals decide when an adaptive run may stop early.
TARGET_FIGURES = ("avgp", "q10", "median", "q90")
# An adaptive run spends this share of its budget on the balanced first rounds, the rest in
# LATER_ROUNDS informative ones (bench/estimation.py's adaptive choice).
FIRST_SHARE = 0.5
LATER_ROUNDS = 2


@dataclass
class Matrix:
    """A variant's cells on a task: rows are phrasing revisions, columns the task's evaluation sample."""

    revisions: list[int]
    instances: list[int]
    observed: np.ndarray  # (P, I) bool
    right: np.ndarray  # (P, I) bool

    @property
    def shape(self) -> tuple[int, int]:
        return self.observed.shape

    def cells(self) -> np.ndarray:
        """The observed cells as (row, column, correct) triples, for estimation.estimate_spread."""
        p, i = np.nonzero(self.observed)
        return np.column_stack([p, i, self.right[p, i]])


def read_matrix(variant: ModelVariant, task: Task, revision_ids: list[int]) -> Matrix:
    instances = task_eval_sample_ids(task)
    row = {revision_id: n for n, revision_id in enumerate(revision_ids)}
    column = {instance_id: n for n, instance_id in enumerate(instances)}
    observed = np.zeros((len(row), len(column)), dtype=bool)
    right = np.zeros_like(observed)
    cells = Prediction.objects.filter(
        variant=variant, revision_id__in=row, instance_id__in=instances
    ).values_list("revision_id", "instance_id", "correct")
    for revision_id, instance_id, correct in cells.iterator(chunk_size=10000):
        observed[row[revision_id], column[instance_id]] = True
        right[row[revision_id], column[instance_id]] = correct
    return Matrix(list(revision_ids), instances, observed, right)


# --- Adaptive runs -----------------------------------------------------------------------------------------


def default_budget(cells: int) -> int:
    """An adaptive run's budget for a scope of `cells` cells: ADAPTIVE_BUDGET_SHARE of them, at least one."""
    return max(1, math.ceil(settings.ADAPTIVE_BUDGET_SHARE * cells))


@dataclass
class Round:
    """One round of an adaptive run: the run's counters as _missing_cells reports them, the cells to score
    now, whether another round follows, and what the run's record says about it."""

    total: int
    done: int
    cells: list[tuple[InstructionRevision, Instance]]
    more: bool
    state: dict


def adaptive_round(run: ScoringRun, chunk_cells: int | None) -> Round:
    """The next round of an adaptive run (at most `chunk_cells` cells, or SCORING_CHUNK_CELLS)."""
    revisions = list(run.revisions.select_related("instruction__task").order_by("id"))
    tasks = {revision.instruction.task for revision in revisions}
    if len(tasks) != 1:
        raise ValueError(f"An adaptive run covers one task; run {run.id} has {len(tasks)}.")
    task = tasks.pop()
    own = [revision.id for revision in revisions]
    # The variant's other phrasings on the task join the fit: they pin down the instance effects.
    others = PhrasingResult.objects.filter(variant=run.variant, task=task, source=ResultSource.SCORED)
    helpers = sorted(set(others.values_list("revision_id", flat=True)) - set(own))
    matrix = read_matrix(run.variant, task, own + helpers)
    in_run = np.zeros(matrix.shape[0], dtype=bool)
    in_run[: len(own)] = True

    budget = run.budget_cells or 0
    spent = Prediction.objects.filter(run=run).count()
    scope = int(in_run.sum()) * matrix.shape[1]
    total = min(scope, run.cached_cells + budget)
    done = min(int(matrix.observed[in_run].sum()), total)
    free = int((~matrix.observed[in_run]).sum())
    left = min(budget - spent, free)
    state = {"budget": budget, "spent": spent, "scope": scope}
    if left <= 0:
        return Round(total, done, [], False, state | {"stopped": "budget" if free else "every cell scored"})

    first = math.ceil(budget * FIRST_SHARE)
    current = None
    if spent >= first and matrix.observed.any():
        current = estimation.estimate_spread(
            matrix.cells(), matrix.shape, draws=estimation.ROUND_DRAWS, seed=run.id
        )
        widest = _widest(current, in_run)
        state["widest_interval"] = round(widest, 4)
        target = settings.ADAPTIVE_TARGET_WIDTH
        if target > 0 and widest <= target:
            return Round(total, done, [], False, state | {"stopped": "intervals narrow enough"})

    later = math.ceil((budget - first) / LATER_ROUNDS)
    size = min(chunk_cells or settings.SCORING_CHUNK_CELLS, left, first - spent if spent < first else later)
    # Cells of the helper phrasings are not the run's to score: the chooser sees them as taken.
    taken = matrix.observed | ~in_run[:, None]
    rng = np.random.default_rng([metrics.SEED, run.id, spent])
    picked = estimation.choose_cells(taken, size, rng, "adaptive", current)
    by_id = {revision.id: revision for revision in revisions}
    instances = Instance.objects.in_bulk([matrix.instances[c] for c in picked[:, 1]])
    cells = [(by_id[matrix.revisions[r]], instances[matrix.instances[c]]) for r, c in picked]
    if size == left:  # the last round: the run ends with it
        state["stopped"] = "budget" if spent + size >= budget else "every cell scored"
    return Round(total, done, cells, size < left, state)


def _widest(current: estimation.SpreadEstimate, in_run: np.ndarray) -> float:
    """The widest interval the run is about: the task's figures, and for a run of one phrasing (a newly
    approved one) its accuracy too, which the figures over many phrasings barely feel."""
    widths = [current.ci[name][1] - current.ci[name][0] for name in TARGET_FIGURES]
    if in_run.sum() == 1:
        low, high = current.accuracy_ci[np.flatnonzero(in_run)[0]]
        widths.append(high - low)
    return float(max(widths))


# --- Estimated figures -------------------------------------------------------------------------------------


def is_estimated(variant: ModelVariant, task: Task) -> bool:
    """While a phrasing sampled by an adaptive run is incomplete (see the module docstring)."""
    incomplete = PhrasingResult.objects.filter(
        variant=variant, task=task, complete=False, source=ResultSource.SCORED
    ).values("revision_id")
    return Prediction.objects.filter(
        variant=variant, revision_id__in=incomplete, run__mode=RunMode.ADAPTIVE
    ).exists()


@dataclass
class TaskEstimate:
    """The estimator's answer for one variant on one task: rows are `results`, in order."""

    results: list[PhrasingResult]
    matrix: Matrix
    estimate: estimation.SpreadEstimate

    @property
    def cells_scored(self) -> int:
        return int(self.matrix.observed.sum())

    @property
    def cells_total(self) -> int:
        return int(self.matrix.observed.size)

    def figure_draws(
        self, rows, observed, unobserved, min_phrasings: int = metrics.MIN_PHRASINGS
    ) -> dict[str, np.ndarray]:
        """Every figure of the registry on each posterior draw (figure_registry.compute, the formulas of the
        point values and the bootstrap; NaN where undefined: Consistency, which needs whole rows; the spread
        figures below `min_phrasings`), for the phrasings `rows` with their observed and unobserved masks:
        what a benchmark average takes draw by draw."""
        rows = np.asarray(rows, dtype=int)
        draws = figure_registry.Draws(
            self.estimate.accuracy_draws[:, rows],
            np.asarray(observed, dtype=bool),
            np.asarray(unobserved, dtype=bool),
        )
        return figure_registry.compute(draws, min_phrasings=min_phrasings)

    def figures(self, draws: dict[str, np.ndarray], phrasings: int) -> dict:
        """The figures in metrics.Summary's keys from figure_draws' draws over `phrasings` phrasings: each
        the mean of its draws, with the 2.5-97.5% interval, marked estimated, with the share of cells
        scored."""
        figures: dict = {"phrasings": phrasings, "instances": self.matrix.shape[1]}
        ci = {}
        for name, values in draws.items():
            values = values[~np.isnan(values)]
            figures[name] = float(values.mean()) if values.size else None
            if values.size:
                ci[name] = (float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5)))
        return figures | {
            "ci": ci,
            "ci_method": "estimated: posterior draws of the unscored cells",
            "estimated": True,
            "cells_scored": self.cells_scored,
            "cells_total": self.cells_total,
            "cells_share": self.cells_scored / self.cells_total,
        }

    def phrasing_estimates(self) -> dict[str, list[float]]:
        """Revision id -> [estimated accuracy, interval low, high] of each incomplete phrasing, for the task
        grid and the phrasing page (JSON keys are strings)."""
        est = self.estimate
        return {
            str(result.revision_id): [float(est.accuracy[n]), *map(float, est.accuracy_ci[n])]
            for n, result in enumerate(self.results)
            if not result.complete
        }


def task_estimate(variant: ModelVariant, task: Task) -> TaskEstimate | None:
    """The estimate of an estimated task (is_estimated), over every scored phrasing; else None."""
    if not is_estimated(variant, task):
        return None
    results = list(
        PhrasingResult.objects.filter(variant=variant, task=task, source=ResultSource.SCORED)
        .select_related("revision__instruction__collection")
        .order_by("revision_id")
    )
    matrix = read_matrix(variant, task, [r.revision_id for r in results])
    return TaskEstimate(results, matrix, estimation.estimate_spread(matrix.cells(), matrix.shape))


def benchmark_figures(per_task: list[dict], draws: list[dict[str, np.ndarray] | None] | None = None) -> dict:
    """A row with an estimated task on a benchmark: each figure's plain mean over the tasks that define it
    (metrics.macro_average, as for exhaustive rows), the share of cells scored over all of them, and a 95%
    interval for the exhaustive figure. `draws` holds, per task, an estimated task's posterior draws of every
    figure (stored in its summary's replicates; None for an exhaustive task, which counts as its value:
    nothing of it is left to estimate). The interval averages the tasks draw by draw, as benchmark rows
    average bootstrap replicates. Where an estimated task has no stored draws (a summary written before they
    were kept), it falls back to the mean of the tasks' bounds, which is wider (it takes the tasks' errors
    to move together) and says so in `ci_method`."""
    names = list(figure_registry.names())
    draws = draws if draws is not None else [None] * len(per_task)
    figures = metrics.macro_average(per_task, names)
    estimated = [i for i, task in enumerate(per_task) if task.get("estimated")]
    lengths = {len(draws[i][names[0]]) for i in estimated if draws[i] is not None}
    by_draw = bool(estimated) and all(draws[i] is not None for i in estimated) and len(lengths) == 1
    ci = {}
    for name in names:
        defined = [i for i, task in enumerate(per_task) if task.get(name) is not None]
        if not defined:
            continue
        if by_draw:
            interval = _draw_interval(per_task, draws, defined, name, next(iter(lengths)))
            if interval is not None:
                ci[name] = interval
            continue
        bounds = [_bounds(per_task[i], name) for i in defined]
        if None not in bounds:
            ci[name] = (float(np.mean([b[0] for b in bounds])), float(np.mean([b[1] for b in bounds])))
    scored = sum(_cells(task)[0] for task in per_task)
    total = sum(_cells(task)[1] for task in per_task)
    chances = [task.get("chance") for task in per_task]
    return figures | {
        "tasks": len(per_task),
        "estimated_tasks": len(estimated),
        "phrasings": sum(task.get("phrasings") or 0 for task in per_task),
        "min_phrasings": per_task[0].get("min_phrasings"),
        "ci": ci,
        "ci_method": (
            "estimated: the tasks' posterior draws averaged draw by draw"
            if by_draw
            else "estimated: mean of the tasks' intervals"
        ),
        "estimated": True,
        "cells_scored": scored,
        "cells_total": total,
        "cells_share": scored / total if total else 0.0,
        "chance": float(np.mean(chances)) if chances and None not in chances else None,
    }


def _draw_interval(
    per_task: list[dict], draws: list, defined: list[int], name: str, size: int
) -> tuple[float, float] | None:
    """The 2.5-97.5% interval of a figure's mean over the tasks that define it, draw by draw (an exhaustive
    task its value in every draw; a draw where an estimated task's figure is undefined is left out)."""
    stacked = np.stack(
        [
            np.asarray(draws[i][name], dtype=float)
            if per_task[i].get("estimated")
            else np.full(size, float(per_task[i][name]))
            for i in defined
        ]
    )
    means = stacked.mean(axis=0)
    means = means[~np.isnan(means)]
    if means.size < size // 2:
        return None
    return (float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5)))


def _bounds(figures: dict, name: str) -> tuple[float, float] | None:
    if not figures.get("estimated"):
        return (figures[name], figures[name])
    return (figures.get("ci") or {}).get(name)


def _cells(figures: dict) -> tuple[int, int]:
    """(scored, total) cells behind a task's figures: an exhaustive task's are all scored."""
    if figures.get("estimated"):
        return figures["cells_scored"], figures["cells_total"]
    cells = (figures.get("phrasings") or 0) * (figures.get("instances") or 0)
    return cells, cells
