"""Scoring runs: plan, create and fill them in. Their life as jobs (claim, heartbeat, cancel, retry, sweep,
recovery) is core/jobs.py's; this module supplies the work.

A run is a fixed set of phrasing revisions scored by one model variant on each revision's task evaluation
sample. Cells that already have a Prediction are never computed again, so runs are incremental and any
run can be re-executed safely: a redelivered or retried job only fills in what is missing. A run with
`formats` scores the same revisions laid out in those declared formats instead
(evaluation/runs/format_cells.py), into FormatPrediction: the same lanes, budget gate, chunks and retries.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Least

from collection import templating
from collection.answers import option_texts
from collection.models import Instance, Instruction, InstructionRevision, Task
from collection.selectors import approved_phrasings, task_eval_sample_ids
from core import jobs
from core.errors import ApplicationError
from core.jobs import JobStatus
from evaluation import split
from evaluation.leaderboards import adaptive_estimates, aggregates, selectors
from evaluation.ml.config import ConfigError, ScoreConfig
from evaluation.ml.errors import ScoringError
from evaluation.ml.items import ScoringItem
from evaluation.models import (
    FormatPrediction,
    LanguageModel,
    ModelVariant,
    Prediction,
    RunLane,
    RunMode,
    RunTrigger,
    ScoringRun,
)
from evaluation.runs import budget, format_cells

log = logging.getLogger(__name__)

AGGREGATE_EVERY_SECONDS = 30


@functools.cache
def _models():
    """One warm model per worker process: consecutive runs of the same model skip loading it again. Made on
    first use, so that torch is imported by the processes that load a model, not by every one that loads the
    app (tests/core/test_startup.py)."""
    from evaluation.ml.loading import ModelCache

    return ModelCache()


def warm_model(spec, device: str):
    """The worker's warm model, loaded if it is not the one held. The model check loads through it too, so a
    worker never holds two models at once and the first run after a check finds its model loaded."""
    return _models().get(spec, device)


def base_variant(model: LanguageModel) -> ModelVariant:
    """The model's own variant, made on first use; refused for a row of published results only, where one
    would only send runs that fail to load it (`score --model flan-t5-xl` did)."""
    if model.carries_published_results_only:
        raise ApplicationError(
            f"{model.name} carries published results only (imported): there is no model to load, so nothing "
            "can be scored, calibrated or trained on it."
        )
    variant, _ = ModelVariant.objects.get_or_create(model=model, kind=ModelVariant.Kind.BASE)
    return variant


# --- Planning and creating runs ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    total: int  # cells in scope: revisions x their task's evaluation sample
    cached: int  # cells that already have a prediction

    @property
    def to_compute(self) -> int:
        return self.total - self.cached


def revisions_by_task(revisions: Iterable[InstructionRevision]) -> dict[Task, list[InstructionRevision]]:
    groups: dict[Task, list[InstructionRevision]] = defaultdict(list)
    for revision in revisions:
        groups[revision.instruction.task].append(revision)
    return groups


def scoring_plan(
    *, variant: ModelVariant, revisions: Iterable[InstructionRevision], formats: Sequence[str] = ()
) -> Plan:
    """Cells in scope and cached: revisions x their task's sample, x the formats for a format run."""
    total = cached = 0
    for task, task_revisions in revisions_by_task(revisions).items():
        sample = task_eval_sample_ids(task)
        if formats:
            total += len(sample) * len(task_revisions) * len(formats)
            cached += format_cells.scored(variant, task_revisions, sample, formats).count()
            continue
        total += len(sample) * len(task_revisions)
        cached += Prediction.objects.filter(
            variant=variant, revision__in=task_revisions, instance_id__in=sample
        ).count()
    return Plan(total=total, cached=cached)


def lane_for(trigger: str) -> str:
    """A person waits for an approval's run; nobody waits for one cell of a registration, an import or a
    rescoring. (A retry's lane is decided when it is retried: scoring_run_retry.)"""
    return RunLane.INTERACTIVE if trigger == RunTrigger.APPROVAL else RunLane.BULK


def scoring_run_create(
    *,
    variant: ModelVariant,
    revisions: list[InstructionRevision],
    trigger: str,
    task: Task | None = None,
    instruction: Instruction | None = None,
    by=None,
    enqueue: bool = True,
    planned: bool = False,
    budget_cells: int | None = None,
    formats: Sequence[str] = (),
) -> ScoringRun | None:
    """Create and queue a run, or return None when every cell is already scored (it would cost nothing).
    enqueue=False leaves it for the caller to execute (the score command runs it in the foreground);
    planned=True saves it unsent, for evaluation/runs/budget.py to send or to keep for an admin. With
    `budget_cells` the run is adaptive (evaluation/leaderboards/adaptive_estimates.py): it computes at most that many cells, so its
    total is what it had plus the budget. With `formats` (keys of collection/formats.py's declared formats)
    it scores the revisions laid out in each of them; such runs are exhaustive."""
    if formats and budget_cells is not None:
        raise ApplicationError("A run over formats scores every cell; it cannot be adaptive.")
    if budget_cells is not None and budget_cells < 1:
        raise ApplicationError(f"An adaptive run's budget must be at least one cell; got {budget_cells}.")
    revisions = list(
        InstructionRevision.objects.filter(id__in=[r.id for r in revisions]).select_related(
            "instruction__task"
        )
    )
    formats = format_cells.checked(formats, revisions)
    plan = scoring_plan(variant=variant, revisions=revisions, formats=formats)
    if plan.to_compute == 0:
        return None
    if budget_cells is not None and len({r.instruction.task_id for r in revisions}) != 1:
        raise ApplicationError("An adaptive run covers the phrasings of one task.")
    adaptive = budget_cells is not None
    if adaptive:
        budget_cells = min(budget_cells, plan.to_compute)  # more than the missing cells buys nothing
    run = ScoringRun.objects.create(
        variant=variant,
        task=task,
        instruction=instruction,
        trigger=trigger,
        lane=lane_for(trigger),
        status=JobStatus.PLANNED if planned else JobStatus.QUEUED,
        mode=RunMode.ADAPTIVE if adaptive else RunMode.EXHAUSTIVE,
        budget_cells=budget_cells,
        total_cells=min(plan.total, plan.cached + budget_cells) if adaptive else plan.total,
        cached_cells=plan.cached,
        done_cells=plan.cached,
        formats=list(formats),
        created_by=by,
    )
    run.revisions.set(revisions)
    if enqueue and not planned:
        jobs.enqueue(ScoringRun, run.id)
    return run


def approved_revisions(
    task: Task | None = None, *, model: LanguageModel | None = None
) -> list[InstructionRevision]:
    """The current revisions of the approved phrasings (of one task, or all): what every model scores, and
    with `model`, those written for its prompt format alone (Alpaca's layout for Alpaca-format models), on
    the benchmarks it is limited to."""
    prompt_format = model.prompt_format if model is not None else None
    phrasings = approved_phrasings(task, prompt_format=prompt_format)
    if model is not None and model.benchmarks.exists():
        phrasings = phrasings.filter(task__benchmark__in=model.benchmarks.all())
    revisions = []
    for phrasing in phrasings:
        revision = phrasing.current_revision
        revision.instruction = phrasing  # already loaded: what the split and the callers read of it
        revisions.append(revision)
    return revisions


def scoring_runs_for_variant(
    *,
    variant: ModelVariant,
    trigger: str,
    by=None,
    task: Task | None = None,
    enqueue: bool = True,
    planned: bool = False,
) -> list[ScoringRun]:
    """One run per task over its approved phrasings (tasks run in parallel on several GPU workers). A soft
    prompt's variant scores the held-out phrasings only: the others may be in its training set."""
    revisions = approved_revisions(task, model=variant.model)
    scores = split.scored_by(variant)
    # Not what a plan waiting for an admin holds already (a run computes its missing cells when it runs, so
    # it scores them all then): another import, or bin/run's load_demo at every start, planned them again.
    # A queued run twice over costs nothing: the second finds its cells scored.
    pending = set(
        ScoringRun.revisions.through.objects.filter(
            scoringrun__variant=variant,
            scoringrun__status=JobStatus.PLANNED,
            scoringrun__mode=RunMode.EXHAUSTIVE,
            scoringrun__formats=[],
        ).values_list("instructionrevision_id", flat=True)
    )
    revisions = [r for r in revisions if scores(r.instruction) and r.id not in pending]
    runs = []
    for group_task, revisions in revisions_by_task(revisions).items():
        run = scoring_run_create(
            variant=variant,
            revisions=revisions,
            trigger=trigger,
            task=group_task,
            by=by,
            enqueue=enqueue,
            planned=planned,
        )
        if run is not None:
            runs.append(run)
    return runs


def scoring_adaptive(
    *,
    variant: ModelVariant,
    task: Task,
    budget_cells: int | None = None,
    by=None,
    trigger=RunTrigger.MANUAL,
    enqueue: bool = True,
) -> ScoringRun | None:
    """An adaptive run of the variant over the task's approved phrasings (those it scores): at most
    `budget_cells` new cells, by default ADAPTIVE_BUDGET_SHARE of them. None when nothing is left to score."""
    revisions = approved_revisions(task, model=variant.model)
    scores = split.scored_by(variant)
    revisions = [r for r in revisions if scores(r.instruction)]
    if not revisions:
        raise ApplicationError(f"{task} has no approved phrasing that {variant} scores.")
    if budget_cells is None:
        budget_cells = adaptive_estimates.default_budget(
            scoring_plan(variant=variant, revisions=revisions).total
        )
    return scoring_run_create(
        variant=variant,
        revisions=revisions,
        trigger=trigger,
        task=task,
        by=by,
        budget_cells=budget_cells,
        enqueue=enqueue,
    )


def approval_budget(task: Task) -> int | None:
    """The budget of a newly approved phrasing's run on one model, or None to score its whole row: only a
    row of more than ADAPTIVE_APPROVAL_ABOVE_CELLS cells (0: none) is first estimated from a sample."""
    row = len(task_eval_sample_ids(task))
    threshold = settings.ADAPTIVE_APPROVAL_ABOVE_CELLS
    return adaptive_estimates.default_budget(row) if threshold and row > threshold else None


def scoring_on_approval(*, instruction: Instruction, by=None) -> list[ScoringRun]:
    """Queue the newly approved revision on every active model. Called inside the approval's transaction,
    so the runs are saved with the approval and sent to the broker only once both are committed."""
    runs = []
    if not instruction.text_available:
        return runs
    models = LanguageModel.objects.scorable()
    # A model limited to some benchmarks scores only their phrasings (the demo model only the demo's).
    models = models.filter(Q(benchmarks=None) | Q(benchmarks=instruction.task.benchmark_id)).distinct()
    if instruction.prompt_format:
        # Written for one prompt format: only its models score it (collection.selectors.written_for).
        models = models.filter(prompt_format=instruction.prompt_format)
    budget = approval_budget(instruction.task)
    for model in models:
        variants = [base_variant(model)]
        soft = selectors.current_soft_variant(model)
        if soft is not None and split.scored_by(soft)(instruction):
            # Soft prompts are judged on held-out phrasings only; a new held-out phrasing joins their figures.
            variants.append(soft)
        for variant in variants:
            run = scoring_run_create(
                variant=variant,
                revisions=[instruction.current_revision],
                trigger=RunTrigger.APPROVAL,
                task=instruction.task,
                instruction=instruction,
                by=by,
                budget_cells=budget,
            )
            if run is not None:
                runs.append(run)
    return runs


def variant_score_now(*, variant: ModelVariant, say: Callable[[str], None] = lambda text: None) -> None:
    """Score whatever the variant is missing in this process (the commands' foreground path), then refresh
    its figures at once rather than when a worker gets to them. Raises ApplicationError if a run fails."""

    def execute(runs) -> None:
        for run in runs:
            say(f"Scoring {variant} on {run.task}: {run.to_compute} cells...")
            done = scoring_run_execute(run_id=run.id, task_id=f"cli-{uuid.uuid4()}")
            if done is not None and done.status != JobStatus.SUCCEEDED:
                raise ApplicationError(f"Scoring run {run.id} failed: {done.error}")

    # Runs already queued for it first (a new soft prompt queues its own), then whatever is still missing.
    execute(ScoringRun.objects.filter(variant=variant, status=JobStatus.QUEUED).select_related("task"))
    execute(scoring_runs_for_variant(variant=variant, trigger=RunTrigger.CLI, enqueue=False))
    tasks = set(variant.runs.exclude(task=None).values_list("task_id", flat=True))
    aggregates.aggregates_refresh_many({(variant.id, task_id) for task_id in tasks})


def scoring_bulk(
    *, variants: list[ModelVariant], trigger: str, by=None, task: Task | None = None
) -> list[ScoringRun]:
    """Bulk work: whatever the variants have not scored (of one task, or all), queued on the bulk lane, or
    kept as one plan for an admin to start when it is over the budget (evaluation/runs/budget.py). A run's
    `plan` says which."""
    runs = []
    for variant in variants:
        runs += scoring_runs_for_variant(variant=variant, trigger=trigger, by=by, task=task, planned=True)
    return budget.bulk_submit(runs=runs, trigger=trigger, by=by)


def scoring_for_active_models(
    *, trigger: str = RunTrigger.MANUAL, by=None, task: Task | None = None
) -> list[ScoringRun]:
    """Queue (or plan, over the budget) whatever approved phrasings active models have not scored yet, of
    one task or all (after an import, or a task's larger sample)."""
    variants = []
    for model in LanguageModel.objects.scorable():
        variants.append(base_variant(model))
        # Its current soft prompt too, on the held-out phrasings it lacks (split.scored_by), as an approval
        # does: an import's new or rewritten held-out phrasings join its figures (they used to drop out of
        # its outcome, never scored).
        soft = selectors.current_soft_variant(model)
        if soft is not None:
            variants.append(soft)
    return scoring_bulk(variants=variants, trigger=trigger, by=by, task=task)


def scoring_run_retry(run: ScoringRun) -> ScoringRun:
    """Queue a failed or cancelled run again (its scored cells are kept). A person is waiting for it, so it
    goes on the interactive lane, unless what is left of it is bulk-sized (over the budget). The scoring-run
    kind's retry (ScoringRun.job): core.jobs.retry calls it with the run."""
    if run.total_cells - run.done_cells <= settings.SCORING_BUDGET_CELLS:
        ScoringRun.objects.filter(id=run.id, status__in=[JobStatus.FAILED, JobStatus.CANCELLED]).update(
            lane=RunLane.INTERACTIVE
        )
    return jobs.requeue(run)


# --- Executing a run ---------------------------------------------------------------------------------------


# Errors that fail a run with their message (a model that does not load, memory that runs out at batch size 1,
# a template that cannot render); anything else fails it as unexpected.
FAILURES = (ScoringError, ConfigError, templating.TemplateError)

# When each run's figures were last refreshed by this worker process (a run continues chunk after chunk).
_last_refresh: dict[int, float] = {}


def scoring_run_execute(
    *,
    run_id: int,
    task_id: str,
    worker: str = "",
    on_progress: Callable[[int, int], None] | None = None,
    resume_token: str | None = None,
) -> ScoringRun | None:
    """Claim the run and fill in all its missing cells, in this process (the foreground path; core/jobs.py's
    execute). Returns None when another delivery holds the claim. If the database goes away, the run is
    handed back and DatabaseInterrupted says which claim to resume."""
    return jobs.execute(
        ScoringRun,
        run_id,
        work=functools.partial(scoring_run_work, on_progress=on_progress),
        task_id=task_id,
        worker=worker,
        resume_token=resume_token,
    )


def scoring_run_work(
    run: ScoringRun, token: uuid.UUID, *, on_progress=None, chunk_cells: int | None = None
) -> None:
    """A scoring run's work: its missing cells, then its figures. With `chunk_cells`, at most that many
    cells, after which the run goes back to its queue for the next chunk (core/jobs.py continue_later)."""
    run = ScoringRun.objects.select_related("variant__model").get(id=run.id)
    finished, touched = _fill_cells(run, token, on_progress, chunk_cells)
    while finished is _NEXT_ROUND:  # an adaptive run in the foreground: its rounds in this process
        finished, more_touched = _fill_cells(run, token, on_progress, chunk_cells)
        touched |= more_touched
    last = _last_refresh.get(run.id, 0.0)
    if finished:  # every task of the run: cells other runs stored count for it too
        _refresh_figures(run)
        _last_refresh.pop(run.id, None)
    elif touched and time.monotonic() - last > AGGREGATE_EVERY_SECONDS:
        # Long runs update the figures as they go, of the tasks this chunk scored only.
        _refresh_figures(run, touched)
        _last_refresh[run.id] = time.monotonic()


def scoring_run_chunk_work(run: ScoringRun, token: uuid.UUID) -> None:
    """A worker's delivery of a run: one chunk of SCORING_CHUNK_CELLS cells."""
    scoring_run_work(run, token, chunk_cells=settings.SCORING_CHUNK_CELLS)


def _refresh_figures(run: ScoringRun, task_ids: set[int] | None = None) -> None:
    """Queue a refresh of the run's figures: of the given tasks, or of every task of the run."""
    if task_ids is None:
        task_ids = set(run.revisions.values_list("instruction__task_id", flat=True))
    aggregates.aggregates_enqueue(variant_id=run.variant_id, task_ids=task_ids)


def _missing_cells(
    run: ScoringRun, limit: int | None
) -> tuple[int, int, list[tuple[InstructionRevision, Instance]], bool]:
    """The run's scope in cells, how many of them have a prediction, its first `limit` cells without one
    (all of them when limit is None) in a fixed order (task, revision, instance), and whether more are
    missing beyond those. Complete revisions cost one count each, so a late chunk of a long run does not
    read every prediction it has stored."""
    total = done = 0
    cells: list[tuple[InstructionRevision, Instance]] = []
    revisions = run.revisions.select_related("instruction__task").order_by("id")
    for task, task_revisions in revisions_by_task(revisions).items():
        sample = task_eval_sample_ids(task)
        total += len(sample) * len(task_revisions)
        instances = None
        for position, revision in enumerate(task_revisions):
            scored = Prediction.objects.filter(variant=run.variant, instance_id__in=sample)
            if limit is not None and len(cells) > limit:
                # Enough for this chunk: the rest of the task's revisions are only counted.
                done += scored.filter(revision__in=task_revisions[position:]).count()
                break
            have = set(scored.filter(revision=revision).values_list("instance_id", flat=True))
            done += len(have)
            if len(have) < len(sample):
                instances = instances or Instance.objects.in_bulk(sample)
                cells += [(revision, instances[i]) for i in sample if i not in have]
    more = limit is not None and len(cells) > limit
    return total, done, cells[:limit] if limit is not None else cells, more


_NEXT_ROUND = object()  # _fill_cells: an adaptive run's next round, in this process (no chunk size given)


def _fill_cells(
    run: ScoringRun,
    token: uuid.UUID,
    on_progress: Callable[[int, int], None] | None,
    chunk_cells: int | None,
):
    """Score the run's missing cells (at most `chunk_cells` of them; an adaptive run's next round) and store
    them batch by batch. Returns the state, True when the run is finished, False when it continues in
    another chunk or is no longer this claim's, _NEXT_ROUND when an adaptive run executed in the foreground
    has another round; and the tasks whose cells were stored since the figures were last refreshed."""
    model = run.variant.model
    spec = run.variant.spec()
    config = ScoreConfig(batch_size=model.batch_size, device=settings.WORKER_DEVICE)
    record = {"model": asdict(spec), "score": asdict(config)}

    # Phase 1: the cells in scope that have no prediction yet (this chunk's share of them), or those an
    # adaptive run's round chooses.
    if run.mode == RunMode.ADAPTIVE:
        chosen = adaptive_estimates.adaptive_round(run, chunk_cells)
        total, done_count, cells, more = chosen.total, chosen.done, chosen.cells, chosen.more
        record["adaptive"] = chosen.state
    elif run.formats:
        total, done_count, cells, more = format_cells.missing(run, chunk_cells)
    else:
        total, done_count, cells, more = _missing_cells(run, chunk_cells)
    truncated = _truncated_cells(run)  # earlier chunks' and attempts'
    _progress(run.id, token, done=done_count, total=total, config=record)
    if on_progress:
        on_progress(done_count, total)

    # Phase 2: score them batch by batch, storing each batch as it comes so a killed run loses little.
    started = time.monotonic()
    touched: set[int] = set()
    if cells:
        from evaluation.ml.scoring import score

        loaded = _models().get(spec, config.device)
        if run.formats:
            items = [cell.item() for cell in cells]
        else:
            items = [
                ScoringItem(
                    *templating.render_parts(rev.template, inst.inputs, inst.options),
                    option_texts(rev.instruction.task, rev, inst),
                )
                for rev, inst in cells
            ]
        last_refresh = time.monotonic()
        for batch in score(loaded, items, config):
            predictions = []
            for index, scores in batch:
                if run.formats:
                    predictions.append(cells[index].prediction(run, scores))
                    continue
                revision, instance = cells[index]
                touched.add(revision.instruction.task_id)
                predictions.append(
                    Prediction(
                        variant=run.variant,
                        revision=revision,
                        instance=instance,
                        run=run,
                        logliks=list(scores.logliks),
                        lengths=list(scores.lengths),
                        predicted=scores.predicted,
                        correct=scores.predicted == instance.gold,
                        truncated=scores.truncated,
                    )
                )
            with transaction.atomic():
                # A redelivered job may race us to a cell; the unique key keeps exactly one prediction.
                type(predictions[0]).objects.bulk_create(predictions, ignore_conflicts=True)
                done_count += len(predictions)
                truncated += sum(p.truncated for p in predictions)
                alive = _progress(run.id, token, done=done_count, total=total, truncated=truncated)
            if not alive:
                log.info("Run %s was cancelled or taken over; stopping.", run.id)
                return False, touched
            if on_progress:
                on_progress(done_count, total)
            if time.monotonic() - last_refresh > AGGREGATE_EVERY_SECONDS:
                _refresh_figures(run, touched)
                touched = set()
                last_refresh = _last_refresh[run.id] = time.monotonic()

    # Phase 3: the chunk's throughput, for queue estimates; then the next chunk, or the end of the run.
    seconds = time.monotonic() - started
    chunk = {"chunks": F("chunks") + 1}
    if cells and seconds > 0:
        chunk["cells_per_second"] = len(cells) / seconds
    if more:
        if not jobs.heartbeat(ScoringRun, run.id, token, **chunk):
            return False, touched
        if chunk_cells is None:
            return _NEXT_ROUND, touched
        jobs.continue_later(ScoringRun, run.id, token)
        return False, touched
    if run.formats:
        exact = format_cells.scored(run.variant, run.revisions.all(), None, run.formats).count()
    else:
        exact = Prediction.objects.filter(variant=run.variant, revision__in=run.revisions.all()).count()
    jobs.finish(
        ScoringRun,
        run.id,
        token,
        JobStatus.SUCCEEDED,
        done_cells=min(exact, total),
        truncated_cells=_truncated_cells(run),
        **chunk,
    )
    return True, touched


def _truncated_cells(run: ScoringRun) -> int:
    """Cells this run stored whose prompt was cut to the model's input length. Counted from what was stored,
    as a cell another run stored first (the conflicts bulk_create ignores) is that run's."""
    stored = FormatPrediction.objects if run.formats else Prediction.objects
    return stored.filter(run=run, truncated=True).count()


def _progress(
    run_id: int,
    token: uuid.UUID,
    *,
    done: int,
    total: int,
    config: dict | None = None,
    truncated: int | None = None,
) -> bool:
    """Store progress; False when the run is no longer ours (cancelled, or claimed by another delivery)."""
    fields = {"done_cells": Least(Value(done), Value(total)), "total_cells": total}
    if config is not None:
        fields["config"] = config
    if truncated is not None:
        fields["truncated_cells"] = truncated
    return jobs.heartbeat(ScoringRun, run_id, token, **fields)


def format_revisions(
    variant: ModelVariant, task: Task | None = None, *, wordings: int | None = None
) -> dict[Task, list[InstructionRevision]]:
    """Per task, the approved phrasings the variant scores that take a format, by phrasing id; with
    `wordings`, only the first N of each task. What a run over formats covers."""
    scores = split.scored_by(variant)
    revisions = [r for r in approved_revisions(task, model=variant.model) if scores(r.instruction)]
    return {
        group_task: sorted(group, key=lambda r: r.instruction_id)[:wordings]
        for group_task, group in revisions_by_task(format_cells.formattable_revisions(revisions)).items()
    }


def scoring_formats(
    *,
    variants: list[ModelVariant],
    task: Task | None = None,
    keys: Sequence[str] = format_cells.DECLARED,
    wordings: int | None = None,
    by=None,
    trigger: str = RunTrigger.MANUAL,
) -> list[ScoringRun]:
    """Bulk work over formats: each variant's approved phrasings that take a format (of one task, or all),
    laid out in the declared formats, one run per task, sent or kept as a plan over the budget like any bulk
    work. `wordings`: only the first N such phrasings of each task (by id), to bound the cost; the
    decomposition then covers those."""
    runs = []
    for variant in variants:
        for group_task, group in format_revisions(variant, task, wordings=wordings).items():
            run = scoring_run_create(
                variant=variant,
                revisions=group,
                trigger=trigger,
                task=group_task,
                by=by,
                planned=True,
                formats=keys,
            )
            if run is not None:
                runs.append(run)
    return budget.bulk_submit(runs=runs, trigger=trigger, by=by)
