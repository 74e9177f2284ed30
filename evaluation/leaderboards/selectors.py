"""Reads for the model and run pages. Lists use one query for their counts, never one per row."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import (
    Avg,
    Case,
    Count,
    F,
    IntegerField,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    When,
)
from django.db.models.functions import Coalesce

from collection import selectors as collection_selectors
from collection.models import Benchmark, Instruction, InstructionRevision, Task
from core.jobs import JobStatus
from evaluation import split
from evaluation.access import models_visible_to, runs_visible_to
from evaluation.leaderboards import colours, common_ground
from evaluation.models import (
    HELDOUT_ONLY_KINDS,
    OWN_KINDS,
    BenchmarkSummary,
    LanguageModel,
    ModelVariant,
    PhrasingResult,
    PhrasingSet,
    Prediction,
    ScoringRun,
    SoftPrompt,
    TaskSummary,
    VariantKind,
    named_variants,
)
from evaluation.stats import figure_registry, metrics, ranking


def benchmark_list() -> QuerySet[Benchmark]:
    """collection's benchmark list, with the number of models scored on each."""
    return collection_selectors.benchmark_list().annotate(
        model_count=collection_selectors.count_of(
            BenchmarkSummary.objects.filter(benchmark=OuterRef("pk"), phrasing_set="all"), "variant__model"
        )
    )


def task_list(benchmark: Benchmark, **filters) -> QuerySet[Task]:
    """collection's task list, with the number of models scored on each task."""
    return collection_selectors.task_list(benchmark, **filters).annotate(
        model_count=collection_selectors.count_of(
            TaskSummary.objects.filter(task=OuterRef("pk"), phrasing_set="all"), "variant__model"
        )
    )


def task_phrasing_scores(task: Task) -> dict[int, dict]:
    """Per approved phrasing of the task: mean accuracy of its current revision over the models scored on
    the task's whole sample (their own figures: a soft prompt or calibration scored on held-out phrasings
    alone would move one phrasing's mean and not its neighbours'), and how many models that is."""
    rows = (
        PhrasingResult.objects.filter(
            task=task,
            complete=True,
            variant__kind__in=OWN_KINDS,
            revision__instruction__status="approved",
            revision__instruction__current_revision=F("revision"),
        )
        .values("revision__instruction_id")
        .annotate(mean=Avg("accuracy"), models=Count("variant__model", distinct=True))
    )
    return {row["revision__instruction_id"]: row for row in rows}


def current_soft_prompt(model: LanguageModel) -> SoftPrompt | None:
    """The model's latest trained soft prompt with a variant on the app's split (SOFTPROMPT_SPLIT_SEED): the
    one new held-out phrasings are scored on. One trained on another split (an experiment over splits,
    `reproduce_study --split-seeds`) is never current, whenever it finished."""
    return (
        SoftPrompt.objects.filter(
            model=model,
            status=JobStatus.SUCCEEDED,
            variant__isnull=False,
            split_seed=split.app_seed(),
        )
        .select_related("variant")
        .order_by("-finished_at", "-id")
        .first()
    )


def current_soft_variant(model: LanguageModel) -> ModelVariant | None:
    soft = current_soft_prompt(model)
    return soft.variant if soft else None


def model_list(user) -> QuerySet[LanguageModel]:
    """Models with their active runs and scored cells, read from stored per-phrasing counts (results), never
    by counting predictions: two small subqueries per page whatever the number of predictions."""
    active = (
        ScoringRun.objects.filter(variant__model=OuterRef("pk"), status__in=ScoringRun.ACTIVE)
        .values("variant__model")
        .annotate(n=Count("id"))
        .values("n")
    )
    scored = (
        PhrasingResult.objects.filter(variant__model=OuterRef("pk"), source="scored")
        .values("variant__model")
        .annotate(n=Sum("n_total"))
        .values("n")
    )
    return (
        models_visible_to(user)
        .annotate(
            active_runs=Coalesce(Subquery(active), 0),
            predictions=Coalesce(Subquery(scored), 0),
        )
        .prefetch_related("tuned_on")
    )


def run_list(user, *, status: str | None = None, model: LanguageModel | None = None) -> QuerySet[ScoringRun]:
    """The runs `user` may see (one run is looked up with evaluation.access.get_run_for_user)."""
    runs = named_variants(runs_visible_to(user)).select_related(
        "task__benchmark", "instruction", "created_by"
    )
    if status in JobStatus.values:
        runs = runs.filter(status=status)
    if model is not None:
        runs = runs.filter(variant__model=model)
    return runs


# --- Leaderboards and results ------------------------------------------------------------------------------

# What a glance needs: accuracy, how much it varies across phrasings, the bad tail, the observed-unobserved gap.
PRIMARY_FIGURES = ("avgp", "spread", "q10", "gap")


def figure_columns(every: bool) -> list[tuple[str, str, str, str]]:
    """The columns a table shows, (name, label, unit, definition) from the figure registry: the glance
    (PRIMARY_FIGURES) or every figure. Units: "pct" a percentage, "pp" percentage points, "ratio" a fraction."""
    return [
        (figure.name, figure.label, figure.unit, figure.definition)
        for figure in figure_registry.columns()
        if every or figure.name in PRIMARY_FIGURES
    ]


def sort_keys() -> set[str]:
    """What a table sorts by: a figure column, or the model, its tasks or its phrasings."""
    return {figure.name for figure in figure_registry.columns()} | {"model", "tasks", "phrasings"}


@dataclass
class Row:
    variant: ModelVariant
    figures: dict
    coverage: common_ground.Coverage | None = None
    partial: bool = False  # not on the common ground: its figures are on its own cells
    # Ranked rows: rank interval and tie group on the figure the board is sorted by (evaluation/stats/ranking.py).
    standing: ranking.Standing | None = None

    @property
    def is_imported(self) -> bool:
        return self.variant.kind == VariantKind.IMPORTED

    @property
    def below_chance(self) -> bool:
        return common_ground.below_chance(self.figures)

    @property
    def estimated(self) -> bool:
        """Its figures are estimates from part of its cells (evaluation/leaderboards/adaptive_estimates.py)."""
        return bool(self.figures.get("estimated"))


@dataclass
class Leaderboard:
    """Ranked rows on their common ground, (on request) the rows with partial coverage, apart, and the rows
    whose figures are estimates, apart too."""

    ground: common_ground.Ground
    rows: list[Row]
    partial: list[Row]
    estimated: list[Row]


def _sorted(rows: list[Row], sort: str, descending: bool) -> list[Row]:
    if sort == "model":
        return sorted(rows, key=lambda r: str(r.variant), reverse=descending)
    present = [r for r in rows if r.figures.get(sort) is not None]
    missing = [r for r in rows if r.figures.get(sort) is None]  # undefined figures sort last either way
    return sorted(present, key=lambda r: r.figures[sort], reverse=descending) + missing


def leaderboard(
    *,
    benchmark: Benchmark,
    phrasing_set: str = "all",
    task_kind: str = "",
    sort: str = "avgp",
    descending: bool = True,
    version: tuple | None = None,
) -> Leaderboard:
    """One row per model variant: benchmark figures as macro averages over the tasks, on the cells every
    ranked row shares (evaluation/leaderboards/common_ground.py); rows with partial coverage apart, on their own cells."""
    board = common_ground.board(
        benchmark=benchmark,
        phrasing_set=phrasing_set,
        task_kind=task_kind,
        version=leaderboard_version(benchmark) if version is None else version,
    )
    return _leaderboard(board, sort, descending)


def models_without_set(benchmark: Benchmark, phrasing_set: str, task_kind: str = "") -> list[str]:
    """The models with figures on the benchmark that have none in a set that depends on the model: one
    tuned on none of its collections has no observed phrasings. Their rows cannot be on such a view; the
    page names them, rather than leaving them out unsaid."""
    if phrasing_set not in (PhrasingSet.OBSERVED, PhrasingSet.UNOBSERVED):
        return []
    summaries = BenchmarkSummary.objects.filter(
        benchmark=benchmark, task_kind=task_kind, variant__kind__in=OWN_KINDS
    )
    present = summaries.filter(phrasing_set=phrasing_set).exclude(figures__avgp=None).values("variant_id")
    return list(
        summaries.filter(phrasing_set=PhrasingSet.ALL)
        .exclude(variant_id__in=present)
        .order_by("variant__model__name")
        .values_list("variant__model__name", flat=True)
        .distinct()
    )


def benchmark_task_kinds(benchmark: Benchmark) -> list[str]:
    return sorted(set(benchmark.tasks.filter(parent__isnull=True).values_list("kind", flat=True)))


def task_results(
    *,
    task: Task,
    phrasing_set: str = "all",
    sort: str = "avgp",
    descending: bool = True,
    version: tuple | None = None,
) -> Leaderboard:
    """The task's rows on their common ground (the leaderboard's rule, on this task's phrasings)."""
    version = task_version(task) if version is None else version
    board = common_ground.task_board(task=task, phrasing_set=phrasing_set, version=version)
    return _leaderboard(board, sort, descending)


def _leaderboard(board: common_ground.Board, sort: str, descending: bool) -> Leaderboard:
    sort = sort if sort in sort_keys() else "avgp"
    standings = board.standings(sort, descending=descending)
    rows = [
        Row(variant, figures, coverage, standing=standing)
        for (variant, figures, coverage), standing in zip(board.rows, standings, strict=True)
    ]
    partial = [Row(variant, figures, coverage, partial=True) for variant, figures, coverage in board.partial]
    estimated = [Row(variant, figures, coverage) for variant, figures, coverage in board.estimated]
    return Leaderboard(
        board.ground,
        _sorted(rows, sort, descending),
        _sorted(partial, sort, descending),
        _sorted(estimated, sort, descending),
    )


# A leader is "provisional" while it has been scored on less than this share of the benchmark's approved
# (task, phrasing) pairs: its lead may not survive the phrasings it has not met yet.
PROVISIONAL_BELOW = 0.5
# The front pages' two questions: who is most accurate, and whose worst phrasings hold up best.
LEADER_FIGURES = (("avgp", "Accuracy"), ("q10", "Robustness"))


@dataclass
class Leaders:
    """One line of a front page: the rows of the top tie group on one figure, each with whether it is
    provisional."""

    figure: figure_registry.Figure
    question: str  # "Accuracy", "Robustness"
    entries: list[tuple[Row, bool]]  # the top tie group, best first
    ranked: int  # rows on the board
    ground: common_ground.Ground

    @property
    def tied(self) -> bool:
        return len(self.entries) > 1


def leaders(benchmark: Benchmark, *, version: tuple | None = None) -> list[Leaders]:
    """Who leads the benchmark's board (every phrasing, every task kind) on accuracy and on robustness: the
    top tie group on AvgP and on Q10 (evaluation/stats/ranking.py), each row marked provisional while it covers
    less than PROVISIONAL_BELOW of the benchmark's approved phrasings on its top-level tasks."""
    version = leaderboard_version(benchmark) if version is None else version
    _, summaries, _, estimated = version
    if not summaries and not estimated:
        return []  # nothing scored or imported yet: no board to read
    approved = Instruction.objects.filter(
        task__benchmark=benchmark, task__parent__isnull=True, status=Instruction.Status.APPROVED
    ).count()

    def provisional(row: Row) -> bool:
        return (
            bool(approved) and row.coverage is not None and row.coverage.cells < PROVISIONAL_BELOW * approved
        )

    out = []
    for name, question in LEADER_FIGURES:
        board = leaderboard(benchmark=benchmark, sort=name, version=version)
        top = [r for r in board.rows if r.standing and r.standing.tie_group == 1]
        if top:
            entries = [(row, provisional(row)) for row in top]
            out.append(Leaders(figure_registry.get(name), question, entries, len(board.rows), board.ground))
    return out


@dataclass
class Grid:
    variants: list[ModelVariant]
    phrasings: list[dict]  # {"revision", "instruction", "cells": [accuracy or None per variant], "mean"}
    page: int
    pages: int
    total: int
    ranked: list[ModelVariant]  # the variants whose mean orders the rows
    estimated: set[int]  # variants whose task figures are estimates: their partly scored cells are too


GRID_PAGE_SIZE = 40


def task_grid(
    *,
    task: Task,
    variants: list[ModelVariant],
    page: int = 1,
    order: str = "best",
    ranked: list[ModelVariant] | None = None,
) -> Grid:
    """The phrasing x model accuracy grid, a page of phrasings at a time, best (or worst) first by their mean
    accuracy over the `ranked` variants (the task's common ground; by default every variant). Only phrasings
    scored for every ranked variant have a mean; the others follow, unranked, so a phrasing scored by two
    models of six is never ranked against one scored by all six. Three queries whatever the number of
    phrasings. Only approved phrasings are rows: they are public, so the grid is the same for everyone and can
    be cached per task.

    Soft-prompt and calibrated variants are columns with cells on the held-out phrasings only; the mean and the order leave
    them out, so adding a soft prompt does not reorder the phrasings or lift the held-out ones."""
    ranked = [v for v in (ranked if ranked is not None else variants) if not v.heldout_only]
    ranked = ranked or [v for v in variants if not v.heldout_only] or variants
    # An estimated variant's partly scored phrasings are rows too, with its estimates as cells; the mean
    # and the order stay those of complete results.
    estimates = {
        s.variant_id: s.figures.get("phrasing_estimates", {})
        for s in TaskSummary.objects.filter(OWN_SET, task=task, variant__in=variants, figures__estimated=True)
    }
    shared = Count("id", filter=Q(variant__in=ranked, complete=True))
    mean = Avg("accuracy", filter=Q(variant__in=ranked, complete=True))
    means = (
        PhrasingResult.objects.filter(
            Q(complete=True) | Q(variant_id__in=estimates),
            task=task,
            variant__in=variants,
            revision__instruction__status=Instruction.Status.APPROVED,
        )
        .values("revision_id")
        .annotate(n=shared, mean=mean)
        .annotate(covered=Case(When(n__gte=len(ranked), then=1), default=0, output_field=IntegerField()))
        .order_by("-covered", "-mean" if order == "best" else "mean", "revision_id")
    )
    total = means.count()
    pages = max(1, -(-total // GRID_PAGE_SIZE))
    page = min(max(1, page), pages)
    chosen = list(means[(page - 1) * GRID_PAGE_SIZE : page * GRID_PAGE_SIZE])
    ids = [row["revision_id"] for row in chosen]
    cells = {
        (r.revision_id, r.variant_id): r.accuracy
        for r in PhrasingResult.objects.filter(revision_id__in=ids, variant__in=variants, complete=True).only(
            "revision_id", "variant_id", "accuracy"
        )
    }
    revisions = InstructionRevision.objects.select_related("instruction__collection").in_bulk(ids)
    phrasings = [
        {
            "revision": revisions[row["revision_id"]],
            "mean": row["mean"],
            # Display values computed here, not in the template: a page holds up to 40 x (models) cells.
            "cells": [
                _cell(cells.get((row["revision_id"], v.id)))
                or _estimated_cell(estimates.get(v.id, {}).get(str(row["revision_id"])))
                for v in variants
            ],
            "mean_text": f"{100 * row['mean']:.0f}" if row["n"] >= len(ranked) else "–",
        }
        for row in chosen
    ]
    return Grid(
        variants=variants,
        phrasings=phrasings,
        page=page,
        pages=pages,
        total=total,
        ranked=ranked,
        estimated=set(estimates),
    )


def _cell(value: float | None) -> dict | None:
    if value is None:
        return None
    return {
        "text": f"{100 * value:.0f}",
        "bg": colours.heat(value),
        "fg": colours.heat_text(value),
        "title": "",
    }


def _estimated_cell(estimate: list[float] | None) -> dict:
    """A cell of a partly scored phrasing: its estimate, marked with "~", its interval in the tooltip."""
    if estimate is None:
        return {"text": "–", "bg": colours.heat(None), "fg": colours.heat_text(None), "title": ""}
    value, low, high = estimate
    return {
        "text": f"~{100 * value:.0f}",
        "bg": colours.heat(value),
        "fg": colours.heat_text(value),
        "title": f"Estimated from part of its cells: 95% interval [{100 * low:.0f}, {100 * high:.0f}]",
    }


# Each variant's own figures on a task: every approved phrasing, or the held-out ones for a soft prompt or
# batch calibration (they have predictions on nothing else).
OWN_SET = Q(phrasing_set=PhrasingSet.ALL) | Q(
    variant__kind__in=HELDOUT_ONLY_KINDS, phrasing_set=PhrasingSet.HELDOUT
)


def task_variants(task: Task) -> list[ModelVariant]:
    variant_ids = TaskSummary.objects.filter(OWN_SET, task=task).values("variant_id")
    return list(
        named_variants(ModelVariant.objects.filter(id__in=variant_ids), "").order_by(
            "model__name", "kind", "id"
        )
    )


def model_task_breakdown(model: LanguageModel, *, worst_first: bool = False) -> list[TaskSummary]:
    summaries = list(
        named_variants(TaskSummary.objects.filter(OWN_SET, variant__model=model))
        .select_related("task__benchmark")
        .order_by("task__benchmark__name", "task__name", "variant__kind", "variant_id")
    )
    if worst_first:
        summaries.sort(key=lambda s: (s.figures.get("avgp") is None, s.figures.get("avgp") or 0))
    return summaries


def revision_mean_accuracy(revision_ids) -> dict[int, tuple[float, int]]:
    """Each revision's mean accuracy over the models that scored it fully (base or published variants), and
    how many models that is: the authoring page's context for a draft's neighbours. One query."""
    rows = (
        PhrasingResult.objects.filter(
            revision_id__in=list(revision_ids),
            complete=True,
            variant__kind__in=OWN_KINDS,
        )
        .values("revision_id")
        .annotate(mean=Avg("accuracy"), models=Count("variant__model", distinct=True))
    )
    return {row["revision_id"]: (row["mean"], row["models"]) for row in rows}


WORST_PHRASINGS = 10


def model_worst_phrasings(model: LanguageModel, limit: int = WORST_PHRASINGS) -> list[PhrasingResult]:
    """The model's lowest-scoring approved phrasings (its base or published variant), worst first."""
    return list(
        PhrasingResult.objects.filter(
            variant__model=model,
            variant__kind__in=OWN_KINDS,
            complete=True,
            revision__instruction__status=Instruction.Status.APPROVED,
            revision_id=F("revision__instruction__current_revision_id"),
        )
        .select_related("revision__instruction__task__benchmark", "variant")
        .order_by("accuracy", "revision_id")[:limit]
    )


def phrasing_results(revision_id: int) -> list[PhrasingResult]:
    return list(named_variants(PhrasingResult.objects.filter(revision_id=revision_id)).order_by("-accuracy"))


@dataclass
class PhrasingStanding:
    """How one phrasing did on one model, against the task's other phrasings on that model."""

    result: PhrasingResult
    ci: tuple[float, float] | None  # Wilson 95% interval over the instances (None for published results)
    median: float | None  # the task's median phrasing on this model
    rank: int | None  # 1 = best of `of` phrasings fully scored on the task for this model
    of: int
    chance: float | None
    estimate: list[float] | None = None  # [accuracy, low, high] while the phrasing is partly scored


def phrasing_standings(results: list[PhrasingResult], task: Task) -> list[PhrasingStanding]:
    """Context for a phrasing's accuracies: interval, the task's median and chance level, its rank. Two queries."""
    variant_ids = [r.variant_id for r in results]
    summaries = {
        s.variant_id: s.figures
        # Each variant's own set: every phrasing, or the held-out ones for a soft prompt (OWN_SET).
        for s in TaskSummary.objects.filter(OWN_SET, task=task, variant_id__in=variant_ids)
    }
    accuracies: dict[int, list[float]] = {}
    for variant_id, accuracy in PhrasingResult.objects.filter(
        task=task, variant_id__in=variant_ids, complete=True
    ).values_list("variant_id", "accuracy"):
        accuracies.setdefault(variant_id, []).append(accuracy)
    scored = [r for r in results if r.n_total]
    lows, highs = metrics.wilson_interval([r.n_correct for r in scored], [r.n_total for r in scored])
    intervals = {id(r): (float(lo), float(hi)) for r, lo, hi in zip(scored, lows, highs, strict=True)}
    standings = []
    for r in results:
        ci = intervals.get(id(r))
        others = accuracies.get(r.variant_id, [])
        rank = 1 + sum(a > r.accuracy for a in others) if r.complete and others else None
        figures = summaries.get(r.variant_id, {})
        estimate = None if r.complete else figures.get("phrasing_estimates", {}).get(str(r.revision_id))
        standings.append(
            PhrasingStanding(r, ci, figures.get("median"), rank, len(others), figures.get("chance"), estimate)
        )
    return standings


def result_estimates(results) -> dict[tuple[int, int], dict]:
    """(variant id, task id) -> its estimated task's per-phrasing estimates, for these results. One query."""
    incomplete = [r for r in results if not r.complete]
    if not incomplete:
        return {}
    summaries = TaskSummary.objects.filter(
        OWN_SET,
        variant_id__in={r.variant_id for r in incomplete},
        task_id__in={r.task_id for r in incomplete},
        figures__estimated=True,
    ).values_list("variant_id", "task_id", "figures")
    return {(v, t): figures.get("phrasing_estimates", {}) for v, t, figures in summaries}


def phrasing_predictions(*, variant_id: int, revision_id: int, wrong_only: bool = False):
    predictions = Prediction.objects.filter(variant_id=variant_id, revision_id=revision_id)
    if wrong_only:
        predictions = predictions.filter(correct=False)
    return predictions.select_related("instance").order_by("instance_id")


def leaderboard_version(benchmark: Benchmark | str) -> tuple:
    """Changes whenever any of the benchmark's summaries is written or deleted, and with its estimated task
    summaries, which make rows of their own (a variant may have no other). `benchmark` may be its slug: a
    page cache asks before looking anything up. Two aggregate queries through the ORM, so the same code runs
    on SQLite and PostgreSQL; the estimated filter is the one the partial index task_summary_estimated serves."""
    which = {"benchmark__slug": benchmark} if isinstance(benchmark, str) else {"benchmark": benchmark}
    summaries = BenchmarkSummary.objects.filter(**which).aggregate(Max("updated_at"), Count("id"))
    estimated = TaskSummary.objects.filter(
        figures__estimated=True, **{f"task__{key}": value for key, value in which.items()}
    ).aggregate(Max("updated_at"), Count("id"))
    return (*summaries.values(), *estimated.values())


def task_version(task: Task | tuple[str, str]) -> tuple:
    """Changes whenever the task's per-phrasing results or summaries change. `task` may be its (benchmark
    slug, task slug)."""
    if isinstance(task, tuple):
        which = {"task__benchmark__slug": task[0], "task__slug": task[1]}
    else:
        which = {"task": task}
    versions = PhrasingResult.objects.filter(**which).aggregate(Max("updated_at"), Count("id"))
    summaries = TaskSummary.objects.filter(**which).aggregate(Max("updated_at"), Count("id"))
    return (*versions.values(), *summaries.values())


# --- An author's phrasings ---------------------------------------------------------------------------------


@dataclass
class Impact:
    """What one phrasing did on one model variant: its accuracy, its rank among the task's approved
    phrasings (1 = best) and the task's spread (MaxP - MinP) with and without it."""

    variant: ModelVariant
    accuracy: float
    rank: int
    of: int
    spread_with: float
    spread_without: float | None
    ci: tuple[float, float] | None = None  # Wilson 95% interval over the instances
    chance: float | None = None  # the task's chance level (from the variant's task summary)

    @property
    def spread_change(self) -> float | None:
        return None if self.spread_without is None else self.spread_with - self.spread_without


def phrasing_impacts(instructions) -> dict[int, list[Impact]]:
    """Per phrasing, its Impact on every variant scored on its current revision (three queries in all)."""
    revisions = {i.current_revision_id: i for i in instructions if i.current_revision_id}
    own = list(
        PhrasingResult.objects.filter(revision_id__in=revisions, complete=True).select_related(
            "variant__model"
        )
    )
    if not own:
        return {}
    pairs = {(r.task_id, r.variant_id) for r in own}
    pool: dict[tuple[int, int], dict[int, float]] = {}
    for task_id, variant_id, revision_id, accuracy in PhrasingResult.objects.filter(
        task_id__in={t for t, _ in pairs},
        variant_id__in={v for _, v in pairs},
        complete=True,
        revision__instruction__status="approved",
        revision__instruction__current_revision=F("revision"),
    ).values_list("task_id", "variant_id", "revision_id", "accuracy"):
        pool.setdefault((task_id, variant_id), {})[revision_id] = accuracy
    chances = {
        (task_id, variant_id): chance
        for task_id, variant_id, chance in TaskSummary.objects.filter(
            OWN_SET, task_id__in={t for t, _ in pairs}, variant_id__in={v for _, v in pairs}
        ).values_list("task_id", "variant_id", "figures__chance")
    }
    scored = [r for r in own if r.n_total]
    lows, highs = metrics.wilson_interval([r.n_correct for r in scored], [r.n_total for r in scored])
    intervals = {id(r): (float(lo), float(hi)) for r, lo, hi in zip(scored, lows, highs, strict=True)}
    impacts: dict[int, list[Impact]] = {}
    for result in own:
        others = {
            k: v
            for k, v in pool.get((result.task_id, result.variant_id), {}).items()
            if k != result.revision_id
        }
        everyone = [*others.values(), result.accuracy]
        impacts.setdefault(revisions[result.revision_id].id, []).append(
            Impact(
                variant=result.variant,
                accuracy=result.accuracy,
                rank=1 + sum(a > result.accuracy for a in others.values()),
                of=len(everyone),
                spread_with=max(everyone) - min(everyone),
                spread_without=(max(others.values()) - min(others.values())) if others else None,
                ci=intervals.get(id(result)),
                chance=chances.get((result.task_id, result.variant_id)),
            )
        )
    for rows in impacts.values():
        rows.sort(key=lambda impact: (impact.variant.model.name, impact.variant.kind))
    return impacts


def phrasing_progress(instructions) -> dict[int, dict]:
    """Per phrasing being scored now: its active runs' cells done and in total."""
    rows = (
        ScoringRun.objects.filter(instruction__in=[i.id for i in instructions], status__in=ScoringRun.ACTIVE)
        .values("instruction_id")
        .annotate(runs=Count("id"), done=Sum("done_cells"), total=Sum("total_cells"))
    )
    return {row["instruction_id"]: row for row in rows}
