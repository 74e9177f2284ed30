"""Keep per-phrasing results and per-task and per-benchmark summaries current as predictions land, so that
leaderboards and task pages read a few summary rows and never scan predictions.

A refresh recomputes one (variant, task) from scratch, then that variant's benchmark summaries, in one
transaction that holds a lock on the variant row: concurrent refreshes queue up instead of interleaving,
and a reader sees either the old figures or the new ones, never a mix.

Which tasks a benchmark row averages over is one rule, `counts_in_benchmark` (and its query form
`counted_in_benchmark`), used by the stored benchmark rows, the leaderboard's common ground and the paired
comparison alike:
- a row scored here averages over the benchmark's top-level tasks (a subtask's results are shown on its
  task page; its instances are part of its parent's evaluation sample);
- a published row (an imported variant) averages over every task its source published results for, top-level
  or subtask, whether or not this benchmark holds the task's instances. Its figures are the source's own
  accuracies, never scored here, so what was imported before them (the task files, their subtasks, the
  phrasings) must not change them: the study's 14 BIG-bench Lite tasks count as 14, among them the two
  subtasks it scored on their own (strange_stories-boolean, logical_deduction-five_objects) and the two whose
  files are not held here (language_identification, vitaminc_fact_verification).
Each benchmark row stores the tasks it averaged over as `tasks_counted` (task slugs).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q

from collection.models import Collection, Instance, Instruction, Task
from collection.selectors import approved_phrasings, task_eval_sample_ids
from core import jobs
from evaluation.leaderboards import adaptive_estimates
from evaluation.models import (
    BenchmarkSummary,
    ModelVariant,
    PhrasingResult,
    PhrasingSet,
    Prediction,
    ResultSource,
    TaskSummary,
    VariantKind,
)
from evaluation.split import is_heldout
from evaluation.stats import figure_registry, metrics, replicates

log = logging.getLogger(__name__)
BENCHMARK_BOOTSTRAP_SAMPLES = 500  # per benchmark row; each replicate resamples every task


# The rule in words, for the pages and the API.
TASKS_RULE = (
    "A row scored here averages over the benchmark's top-level tasks. A published row (imported results) "
    "averages over every task its source published results for, whether or not this benchmark holds the "
    "task's instances and whether or not it files the task as a subtask: its figures are the source's own "
    "accuracies, so they come out as published whatever was imported first. Ranked rows count the common "
    "ground's tasks."
)


def counts_in_benchmark(variant: ModelVariant, task: Task) -> bool:
    """Whether the variant's results on the task count in its benchmark rows (the module docstring's
    rule)."""
    return task.parent_id is None or variant.kind == VariantKind.IMPORTED


def counted_in_benchmark(benchmark) -> Q:
    """counts_in_benchmark as a filter on the benchmark's rows with a `task` and a `variant` (PhrasingResult,
    TaskSummary)."""
    return Q(task__benchmark=benchmark) & (
        Q(task__parent__isnull=True) | Q(variant__kind=VariantKind.IMPORTED)
    )


def aggregates_refresh(*, variant_id: int, task_id: int) -> None:
    aggregates_refresh_many({(variant_id, task_id)})


def aggregates_refresh_many(pairs: set[tuple[int, int]]) -> None:
    """Refresh (variant id, task id) pairs, then each variant's benchmark summaries once (an import touches
    many tasks; a scoring run's job, one)."""
    with transaction.atomic():
        benchmarks: dict[int, set] = {}
        for variant_id, task_id in sorted(pairs):
            variant = ModelVariant.objects.select_for_update().select_related("model").get(id=variant_id)
            task = Task.objects.select_related("benchmark").get(id=task_id)
            if variant.kind != VariantKind.IMPORTED:
                _refresh_scored_results(variant, task)
            _refresh_task_summaries(variant, task)
            benchmarks.setdefault(variant_id, set()).add(task.benchmark)
        for variant_id, variant_benchmarks in benchmarks.items():
            variant = ModelVariant.objects.select_related("model").get(id=variant_id)
            for benchmark in variant_benchmarks:
                benchmark_summaries_refresh(variant=variant, benchmark=benchmark)


def aggregates_enqueue(*, variant_id: int, task_ids) -> None:
    """Refresh on the `default` queue once the current transaction commits. If the broker cannot be reached,
    the figures catch up at the next refresh of this variant and task; no result is lost."""
    for task_id in set(task_ids):
        jobs.send_on_commit(
            "evaluation.refresh_aggregates", variant_id, task_id, what=f"figures of variant {variant_id}"
        )


def aggregates_enqueue_for_task(*, task: Task) -> None:
    """A phrasing of the task changed status: every variant with results there needs new figures."""
    variant_ids = PhrasingResult.objects.filter(task=task).values_list("variant_id", flat=True).distinct()
    for variant_id in variant_ids:
        aggregates_enqueue(variant_id=variant_id, task_ids=[task.id])


def aggregates_enqueue_for_revision(*, revision_id: int, task_id: int, except_variants=()) -> None:
    """An approval that needs no run still changes figures: a retired phrasing reinstated (its results left
    the figures, its predictions stayed) or an edit back to a text already scored. Every variant holding
    predictions of the revision, but for those with a run of their own (it refreshes them when it ends)."""
    variant_ids = (
        Prediction.objects.filter(revision_id=revision_id)
        .exclude(variant_id__in=except_variants)
        .values_list("variant_id", flat=True)
        .distinct()
    )
    for variant_id in variant_ids:
        aggregates_enqueue(variant_id=variant_id, task_ids=[task_id])


def _current_approved(task: Task) -> dict[int, Instruction]:
    return {i.current_revision_id: i for i in approved_phrasings(task, scorable=False)}


def _refresh_scored_results(variant: ModelVariant, task: Task) -> None:
    approved = _current_approved(task)
    sample = task_eval_sample_ids(task)
    counts = (
        Prediction.objects.filter(variant=variant, revision_id__in=approved, instance_id__in=sample)
        .values("revision_id")
        .annotate(total=Count("id"), right=Count("id", filter=Q(correct=True)))
    )
    seen = set()
    for row in counts:
        seen.add(row["revision_id"])
        PhrasingResult.objects.update_or_create(
            variant=variant,
            revision_id=row["revision_id"],
            defaults={
                "task": task,
                "accuracy": row["right"] / row["total"],
                "n_correct": row["right"],
                "n_total": row["total"],
                "complete": row["total"] == len(sample),
                "source": ResultSource.SCORED,
            },
        )
    # Phrasings retired, rejected or revised since: their old results leave the figures (predictions stay).
    PhrasingResult.objects.filter(variant=variant, task=task, source=ResultSource.SCORED).exclude(
        revision_id__in=seen
    ).delete()


def task_data(variant: ModelVariant, task: Task, revisions=None) -> metrics.TaskData | None:
    """The inputs of the metrics for one task: complete phrasings only, so every row covers the same sample;
    only the given revisions when `revisions` is set (a leaderboard's common ground)."""
    keyed = task_data_keyed(variant, task, revisions)
    return keyed.data if keyed is not None else None


@dataclass(frozen=True)
class KeyedTaskData:
    """task_data with what its rows and columns are: the results (phrasing revisions) in row order, and the
    evaluation sample's instance ids in column order (none for imported results)."""

    data: metrics.TaskData
    results: list[PhrasingResult]
    sample: list[int]


def task_data_keyed(variant: ModelVariant, task: Task, revisions=None) -> KeyedTaskData | None:
    tuned_on = set(variant.model.tuned_on.values_list("id", flat=True))
    results = PhrasingResult.objects.filter(variant=variant, task=task, complete=True)
    if revisions is not None:
        results = results.filter(revision_id__in=revisions)
    results = list(results.select_related("revision__instruction__collection").order_by("revision_id"))
    if not results:
        return None
    observed, heldout, defaults = _flags(tuned_on, results)
    if variant.kind == VariantKind.IMPORTED:
        data = metrics.TaskData(
            observed, accuracies=[r.accuracy for r in results], heldout=heldout, defaults=defaults
        )
        return KeyedTaskData(data, results, [])
    sample = task_eval_sample_ids(task)
    cells = Prediction.objects.filter(variant=variant, revision_id__in=[r.revision_id for r in results])
    cells = cells.filter(instance_id__in=sample).values_list(
        "revision_id", "instance_id", "correct", "predicted", "logliks", "lengths"
    )
    grid = _cell_grid([r.revision_id for r in results], sample, cells.iterator(chunk_size=10000))
    # A batch-calibrated variant stores calibrated scores, not log-likelihoods: no POSIX.
    terms = None if variant.kind == VariantKind.CALIBRATED else grid.posix_terms()
    data = metrics.TaskData(
        observed,
        correct=grid.correct,
        heldout=heldout,
        defaults=defaults,
        predicted=grid.predicted if grid.complete else None,
        posix_terms=terms,
    )
    return KeyedTaskData(data, results, sample)


class _CellGrid:
    """The cells of a task's complete phrasings (rows, in the given revision order) on its evaluation
    sample (columns): right or wrong, the option predicted, and each option's summed log-likelihood and
    length in tokens (NaN-padded to the most options any instance has)."""

    def __init__(self, revisions: list[int], sample: list[int], width: int):
        self.row = {revision_id: i for i, revision_id in enumerate(revisions)}
        self.column = {instance_id: j for j, instance_id in enumerate(sample)}
        shape = (len(revisions), len(sample))
        self.correct = np.zeros(shape, dtype=bool)
        self.predicted = np.zeros(shape, dtype=int)
        self.logliks = np.full((*shape, width), np.nan)
        self.lengths = np.full((*shape, width), np.nan)
        self.usable = np.ones(shape, dtype=bool)  # the cell's log-likelihoods can serve POSIX
        self.complete = True  # every cell was read

    def posix_terms(self) -> np.ndarray | None:
        """POSIX's pair terms (figure_registry.pair_terms), or None when a cell lacks usable
        log-likelihoods (an option list that does not fit, a length under one token): POSIX is then n/a for
        the task rather than computed over a different set of instances than the other figures."""
        if not self.usable.all():
            return None
        with np.errstate(invalid="ignore"):
            terms = figure_registry.pair_terms(self.logliks, self.lengths, self.predicted)
        # Phrasings that offer an instance different numbers of options: no log P(y_j | x_i) to compare.
        return terms if np.isfinite(terms).all() else None


def _cell_grid(revisions: list[int], sample: list[int], cells) -> _CellGrid:
    rows = list(cells)
    width = max((len(c[4]) for c in rows if isinstance(c[4], list)), default=0)
    grid = _CellGrid(revisions, sample, max(width, 1))
    for revision_id, instance_id, right, predicted, logliks, lengths in rows:
        i, j = grid.row[revision_id], grid.column[instance_id]
        grid.correct[i, j] = right
        grid.predicted[i, j] = predicted
        ok = (
            isinstance(logliks, list)
            and isinstance(lengths, list)
            and len(logliks) == len(lengths)
            and predicted < len(logliks)
            and all(isinstance(v, int | float) and math.isfinite(v) for v in (*logliks, *lengths))
            and min(lengths, default=0) >= 1
        )
        if ok:
            grid.logliks[i, j, : len(logliks)] = logliks
            grid.lengths[i, j, : len(lengths)] = lengths
        grid.usable[i, j] = ok
    # Complete phrasings have every cell; one missing since (deleted predictions) has no option to compare.
    grid.complete = len(rows) == grid.correct.size
    grid.usable &= grid.complete
    return grid


def _flags(tuned_on: set[int], results: list[PhrasingResult]) -> tuple[list[bool], list[bool], list[bool]]:
    """Each result's phrasing: observed (in a collection the model was tuned on), held out, a default."""
    observed = [r.revision.instruction.collection_id in tuned_on for r in results]
    heldout = [is_heldout(r.revision.instruction.stable_key) for r in results]
    defaults = [
        r.revision.instruction.collection.kind == Collection.Kind.BENCHMARK_DEFAULT and not observed[i]
        for i, r in enumerate(results)
    ]
    return observed, heldout, defaults


def chance_level(task: Task) -> float | None:
    """The accuracy of answering at random: the mean over the task's evaluation sample of 1 / options."""
    sizes = [
        len(options)
        for options in Instance.objects.filter(id__in=task_eval_sample_ids(task)).values_list(
            "options", flat=True
        )
        if options
    ]
    return float(np.mean([1 / n for n in sizes])) if sizes else None


def subset(data: metrics.TaskData, phrasing_set: str) -> metrics.TaskData | None:
    """The task's data on one phrasing set (None when the set has none of its phrasings)."""
    mask = np.asarray(data.observed, dtype=bool)
    heldout = np.asarray(data.heldout if data.heldout is not None else [False] * len(mask), dtype=bool)
    defaults = np.asarray(data.defaults if data.defaults is not None else [False] * len(mask), dtype=bool)
    unobserved = data.unobserved()
    keep = {
        PhrasingSet.OBSERVED: mask,
        PhrasingSet.UNOBSERVED: unobserved,
        PhrasingSet.DEFAULTS: defaults,
        PhrasingSet.HELDOUT: heldout,
        PhrasingSet.HELDOUT_UNOBSERVED: heldout & unobserved,
    }.get(phrasing_set, np.ones_like(mask))
    if not keep.any():
        return None
    return data.rows(keep)


def phrasing_sets(variant: ModelVariant) -> list[str]:
    """A soft prompt is scored on held-out phrasings only, so it has figures for the held-out sets alone
    (an "all phrasings" row of held-out phrasings would sit misleadingly beside the base model's)."""
    if variant.heldout_only:
        return [PhrasingSet.HELDOUT, PhrasingSet.HELDOUT_UNOBSERVED]
    return list(PhrasingSet.values)


def _refresh_task_summaries(variant: ModelVariant, task: Task) -> None:
    # Sampled by an adaptive run and not yet exhaustive: estimated figures (evaluation/leaderboards/adaptive_estimates.py), over
    # every scored phrasing. Its TaskData carries row numbers as "accuracies", so that `subset` (the one
    # rule for phrasing sets) says which rows of the estimate each set keeps.
    estimate = adaptive_estimates.task_estimate(variant, task)
    if estimate is None:
        data = task_data(variant, task)
    else:
        tuned_on = set(variant.model.tuned_on.values_list("id", flat=True))
        observed, heldout, defaults = _flags(tuned_on, estimate.results)
        numbers = list(range(len(estimate.results)))
        data = metrics.TaskData(observed, accuracies=numbers, heldout=heldout, defaults=defaults)
    chance = chance_level(task) if data else None
    for phrasing_set in PhrasingSet.values:
        if phrasing_set not in phrasing_sets(variant):
            TaskSummary.objects.filter(variant=variant, task=task, phrasing_set=phrasing_set).delete()
            continue
        chosen = subset(data, phrasing_set) if data else None
        if chosen is None:
            TaskSummary.objects.filter(variant=variant, task=task, phrasing_set=phrasing_set).delete()
            continue
        stored = None
        if estimate is None:
            figures = task_figures(task, chosen, chance=chance)
            # Only tasks averaged into benchmark rows keep replicates.
            if counts_in_benchmark(variant, task):
                stored = replicates.pack(task_part(task, chosen).replicates)
        else:
            rows = np.asarray(chosen.accuracies, dtype=int)
            # Every figure on each posterior draw (metrics.replicate_figures' names, NaN where undefined):
            # an estimated task's counterpart of bootstrap replicates.
            draws = estimate.figure_draws(rows, chosen.observed, chosen.unobserved(), min_phrasings())
            figures = estimate.figures(draws, len(rows)) | {
                "chance": chance,
                "min_phrasings": min_phrasings(),
            }
            if phrasing_set == phrasing_sets(variant)[0]:  # its own set, where pages look (OWN_SET)
                figures["phrasing_estimates"] = estimate.phrasing_estimates()
            # Its posterior draws, in the replicates' place: an estimated benchmark row averages them draw
            # by draw (adaptive_estimates.benchmark_figures); exact benchmark rows leave estimated tasks out.
            if counts_in_benchmark(variant, task):
                stored = replicates.pack(draws)
        TaskSummary.objects.update_or_create(
            variant=variant,
            task=task,
            phrasing_set=phrasing_set,
            defaults={"figures": figures, "replicates": stored},
        )


def task_part(task: Task, data: metrics.TaskData) -> metrics.TaskPart:
    """The task's share of a benchmark row: its figures and BENCHMARK_BOOTSTRAP_SAMPLES replicates drawn
    with the task's own seed (metrics.task_rng of its slug), the same whether stored or computed on a ground,
    and in any database the task is imported into."""
    return metrics.task_part(
        data,
        rng=metrics.task_rng(metrics.task_key(task.slug)),
        samples=BENCHMARK_BOOTSTRAP_SAMPLES,
        min_phrasings=settings.SPREAD_MIN_PHRASINGS,
    )


def stored_part(summary: TaskSummary) -> metrics.TaskPart:
    """A task's share of a benchmark row from its stored summary (no predictions read); the summary must be
    current (summary_is_current)."""
    figures = summary.figures
    draws = replicates.unpack(summary.replicates)
    if draws is None:
        raise ValueError(f"Task summary {summary.id} was stored under other figures: refresh it first.")
    return metrics.TaskPart(
        point={name: figures[name] for name in figure_registry.names()},
        replicates=draws,
        phrasings=figures["phrasings"],
        two_way=figures["ci_method"] == "instances and phrasings",
    )


def min_phrasings() -> int:
    """The fewest phrasings on a task for its spread figures (the SPREAD_MIN_PHRASINGS setting)."""
    return settings.SPREAD_MIN_PHRASINGS


_COMPUTE = object()  # task_figures: look the chance level up


def task_figures(task: Task, data: metrics.TaskData, *, chance=_COMPUTE) -> dict:
    """One task's figures with intervals, the chance level (given, or looked up) and the spread rule's
    minimum beside them."""
    summary = metrics.summarise(
        correct=data.correct,
        accuracies=data.accuracies,
        observed=data.observed,
        unobserved=data.unobserved(),
        min_phrasings=settings.SPREAD_MIN_PHRASINGS,
        **data.instance_inputs(),
    )
    chance = chance_level(task) if chance is _COMPUTE else chance
    return summary.as_dict() | {"chance": chance, "min_phrasings": settings.SPREAD_MIN_PHRASINGS}


def benchmark_summaries_refresh(*, variant: ModelVariant, benchmark) -> None:
    """Macro averages over the benchmark's tasks that count for the variant (counts_in_benchmark), for every
    task kind and phrasing set, from the
    tasks' stored figures and replicates: one task's change costs that task's refresh and this average, not
    a rebuild of every task's matrix. A summary stored before replicates were kept is recomputed once.
    Tasks with estimated figures (sampled by an adaptive run) are left out, so these rows are exact; the
    leaderboard lists a variant with estimated tasks apart, from its task summaries (common_ground)."""
    summaries = _counted_summaries(variant, benchmark)
    # Stored before replicates were kept, before the task counted (a published row's subtask), or under
    # another list of figures.
    stale = {s.task for s in summaries if s.replicates is None or not summary_is_current(s)}
    if stale:
        for task in stale:
            _refresh_task_summaries(variant, task)
        summaries = _counted_summaries(variant, benchmark)
    kinds = [""] + sorted({s.task.kind for s in summaries})
    wanted = set()
    for kind in kinds:
        for phrasing_set in phrasing_sets(variant):
            picked = [
                s for s in summaries if s.phrasing_set == phrasing_set and (not kind or s.task.kind == kind)
            ]
            if not picked:
                continue
            figures = benchmark_figures(
                [stored_part(s) for s in picked],
                [s.figures.get("chance") for s in picked],
                [s.task.slug for s in picked],
            )
            BenchmarkSummary.objects.update_or_create(
                variant=variant,
                benchmark=benchmark,
                phrasing_set=phrasing_set,
                task_kind=kind,
                defaults={"figures": figures},
            )
            wanted.add((phrasing_set, kind))
    for summary in BenchmarkSummary.objects.filter(variant=variant, benchmark=benchmark):
        if (summary.phrasing_set, summary.task_kind) not in wanted:
            summary.delete()


def summary_is_current(summary: TaskSummary) -> bool:
    """Computed under the registry's figures: its figures name every one, and its replicates (kept for the
    tasks averaged into benchmark rows) hold exactly those (replicates.is_current). Needs the replicates
    loaded (TaskSummary.with_replicates)."""
    if not set(figure_registry.names()) <= set(summary.figures):
        return False
    return summary.replicates is None or replicates.is_current(summary.replicates)


def figures_refresh_stale() -> int:
    """Recompute every summary stored under another list of figures (a figure added to or removed from the
    registry since): its (variant, task) pairs, which refreshes their variants' benchmark rows, then any
    benchmark row still missing a figure. Returns the number of (variant, task) pairs recomputed."""
    stale: dict[int, set[tuple[int, int]]] = {}
    rows = TaskSummary.with_replicates.only("id", "variant_id", "task_id", "figures", "replicates")
    for summary in rows.iterator(chunk_size=200):
        if not summary_is_current(summary):
            stale.setdefault(summary.variant_id, set()).add((summary.variant_id, summary.task_id))
    # One transaction per variant: its lock is held for its own tasks only.
    for pairs in stale.values():
        aggregates_refresh_many(pairs)
    names = set(figure_registry.names())
    missing = {
        (row.variant_id, row.benchmark)
        for row in BenchmarkSummary.objects.select_related("benchmark")
        if not names <= set(row.figures)
    }
    for variant_id, benchmark in missing:
        with transaction.atomic():
            variant = ModelVariant.objects.select_for_update().select_related("model").get(id=variant_id)
            benchmark_summaries_refresh(variant=variant, benchmark=benchmark)
    return sum(len(pairs) for pairs in stale.values())


def _counted_summaries(variant: ModelVariant, benchmark) -> list[TaskSummary]:
    # In task slug order: a mean of floats depends on the order it adds them, and the slug, unlike the id or
    # the database's row order, is the same wherever the tasks are (a release imported elsewhere).
    summaries = (
        TaskSummary.with_replicates.filter(counted_in_benchmark(benchmark), variant=variant)
        .select_related("task")
        .order_by("task__slug", "phrasing_set")
    )
    return [s for s in summaries if not s.figures.get("estimated")]


def benchmark_figures(parts: list[metrics.TaskPart], chances: list[float | None], tasks: list[str]) -> dict:
    """Macro averages over the tasks' parts, with the macro-averaged chance level and the tasks averaged
    over (their slugs, `tasks_counted`) beside them."""
    figures = metrics.macro_summary(parts, min_phrasings=settings.SPREAD_MIN_PHRASINGS)
    figures["chance"] = float(np.mean(chances)) if chances and None not in chances else None
    figures["tasks_counted"] = sorted(tasks)
    return figures
