"""Model registry and scoring runs: register, plan, create, claim, execute, cancel, retry and recover.

A run is a fixed set of phrasing revisions scored by one model variant on each revision's task evaluation
sample. Cells that already have a Prediction are never computed again, so runs are incremental and any
run can be re-executed safely: a redelivered or retried job only fills in what is missing.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import timedelta

from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import Value
from django.db.models.functions import Least
from django.utils import timezone

from collection import templating
from collection.models import Instance, Instruction, InstructionRevision, Task
from collection.selectors import task_eval_sample_ids
from core import jobs
from core.errors import ApplicationError
from evaluation import leases
from evaluation.ml.config import ConfigError, ModelSpec, ScoreConfig
from evaluation.ml.errors import ScoringError
from evaluation.ml.loading import ModelCache
from evaluation.models import LanguageModel, ModelVariant, Prediction, RunStatus, RunTrigger, ScoringRun

log = logging.getLogger(__name__)

AGGREGATE_EVERY_SECONDS = 30

# One warm model per worker process: consecutive runs of the same model skip loading it again.
_models = ModelCache()


# --- Registry ----------------------------------------------------------------------------------------------


def language_model_register(
    *,
    name: str,
    source: str,
    family: str,
    revision: str = "",
    dtype: str = "auto",
    prompt_format: str = "none",
    tuned_on: Iterable = (),
    batch_size: int = 16,
    description: str = "",
    trust_remote_code: bool = False,
    by=None,
    score: bool = True,
) -> LanguageModel:
    """Register a model and (on commit) queue the scoring of every approved phrasing on it."""
    try:
        ModelSpec(source=source, family=family, revision=revision, dtype=dtype, prompt_format=prompt_format)
    except ConfigError as exc:
        raise ApplicationError(f"The model cannot be registered: {exc}") from exc
    if batch_size < 1:
        raise ApplicationError("The batch size must be at least 1.")
    if LanguageModel.objects.filter(name=name).exists():
        raise ApplicationError(f"A model named '{name}' is already registered.")
    with transaction.atomic():
        model = LanguageModel.objects.create(
            name=name,
            source=source,
            family=family,
            revision=revision,
            dtype=dtype,
            prompt_format=prompt_format,
            batch_size=batch_size,
            description=description,
            trust_remote_code=trust_remote_code,
            created_by=by,
        )
        model.tuned_on.set(list(tuned_on))
        variant = base_variant(model)
        if score:
            scoring_runs_for_variant(variant=variant, trigger=RunTrigger.REGISTRATION, by=by)
    return model


def language_model_score_missing(*, model: LanguageModel, trigger: str = RunTrigger.MANUAL, by=None) -> list[ScoringRun]:
    """Queue every approved phrasing the model has not scored yet (admin's "register" and "score" actions)."""
    return scoring_runs_for_variant(variant=base_variant(model), trigger=trigger, by=by)


def base_variant(model: LanguageModel) -> ModelVariant:
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


def scoring_plan(*, variant: ModelVariant, revisions: Iterable[InstructionRevision]) -> Plan:
    total = cached = 0
    for task, task_revisions in revisions_by_task(revisions).items():
        sample = task_eval_sample_ids(task)
        total += len(sample) * len(task_revisions)
        cached += Prediction.objects.filter(
            variant=variant, revision__in=task_revisions, instance_id__in=sample
        ).count()
    return Plan(total=total, cached=cached)


def scoring_run_create(
    *,
    variant: ModelVariant,
    revisions: list[InstructionRevision],
    trigger: str,
    task: Task | None = None,
    instruction: Instruction | None = None,
    by=None,
    enqueue: bool = True,
) -> ScoringRun | None:
    """Create and queue a run, or return None when every cell is already scored (it would cost nothing).
    enqueue=False leaves it for the caller to execute (the score command runs it in the foreground)."""
    revisions = list(InstructionRevision.objects.filter(id__in=[r.id for r in revisions]).select_related("instruction__task"))
    plan = scoring_plan(variant=variant, revisions=revisions)
    if plan.to_compute == 0:
        return None
    run = ScoringRun.objects.create(
        variant=variant,
        task=task,
        instruction=instruction,
        trigger=trigger,
        total_cells=plan.total,
        cached_cells=plan.cached,
        done_cells=plan.cached,
        created_by=by,
    )
    run.revisions.set(revisions)
    if enqueue:
        _enqueue(run.id)
    return run


def approved_revisions(task: Task | None = None) -> list[InstructionRevision]:
    instructions = Instruction.objects.filter(
        status=Instruction.Status.APPROVED, current_revision__isnull=False, text_available=True
    )
    if task is not None:
        instructions = instructions.filter(task=task)
    return list(
        InstructionRevision.objects.filter(id__in=instructions.values("current_revision_id")).select_related(
            "instruction__task"
        )
    )


def scoring_runs_for_variant(
    *, variant: ModelVariant, trigger: str, by=None, task: Task | None = None, enqueue: bool = True
) -> list[ScoringRun]:
    """One run per task over its approved phrasings (tasks run in parallel on several GPU workers). A soft
    prompt's variant scores the held-out phrasings only: the others may be in its training set."""
    from evaluation.models import VariantKind
    from evaluation.split import is_heldout

    revisions = approved_revisions(task)
    if variant.kind == VariantKind.SOFT_PROMPT:
        revisions = [r for r in revisions if is_heldout(r.instruction_id)]
    runs = []
    for group_task, revisions in revisions_by_task(revisions).items():
        run = scoring_run_create(
            variant=variant, revisions=revisions, trigger=trigger, task=group_task, by=by, enqueue=enqueue
        )
        if run is not None:
            runs.append(run)
    return runs


def scoring_on_approval(*, instruction: Instruction, by=None) -> list[ScoringRun]:
    """Queue the newly approved revision on every active model. Called inside the approval's transaction,
    so the runs are saved with the approval and sent to the broker only once both are committed."""
    runs = []
    if not instruction.text_available:
        return runs
    from evaluation.softprompts import current_soft_variant
    from evaluation.split import is_heldout

    for model in LanguageModel.objects.filter(is_active=True):
        variants = [base_variant(model)]
        soft = current_soft_variant(model)
        if soft is not None and is_heldout(instruction.id):
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
            )
            if run is not None:
                runs.append(run)
    return runs


def variant_score_now(*, variant: ModelVariant, say: Callable[[str], None] = lambda text: None) -> None:
    """Score whatever the variant is missing in this process (the commands' foreground path), then refresh
    its figures at once rather than when a worker gets to them. Raises ApplicationError if a run fails."""
    from evaluation.aggregates import aggregates_refresh_many

    def execute(runs) -> None:
        for run in runs:
            say(f"Scoring {variant} on {run.task}: {run.to_compute} cells...")
            done = scoring_run_execute(run_id=run.id, task_id=f"cli-{uuid.uuid4()}")
            if done is not None and done.status != RunStatus.SUCCEEDED:
                raise ApplicationError(f"Scoring run {run.id} failed: {done.error}")

    # Runs already queued for it first (a new soft prompt queues its own), then whatever is still missing.
    execute(ScoringRun.objects.filter(variant=variant, status=RunStatus.QUEUED).select_related("task"))
    execute(scoring_runs_for_variant(variant=variant, trigger=RunTrigger.CLI, enqueue=False))
    tasks = set(variant.runs.exclude(task=None).values_list("task_id", flat=True))
    aggregates_refresh_many({(variant.id, task_id) for task_id in tasks})


def scoring_for_active_models(*, trigger: str = RunTrigger.MANUAL, by=None) -> list[ScoringRun]:
    """Queue whatever approved phrasings active models have not scored yet (after an import, say)."""
    runs = []
    for model in LanguageModel.objects.filter(is_active=True):
        runs += scoring_runs_for_variant(variant=base_variant(model), trigger=trigger, by=by)
    return runs


def _enqueue(run_id: int, countdown: int | None = None) -> None:
    from evaluation.tasks import score_run

    runs = ScoringRun.objects.filter(id=run_id)
    jobs.send_on_commit(
        score_run, run_id, what=f"scoring run {run_id}", countdown=countdown,
        sent=lambda: runs.filter(sent_at__isnull=True).update(sent_at=timezone.now()),
        # Left queued with no sent_at: the periodic sweep sends it once the broker is back.
        unreachable=lambda: runs.update(sent_at=None),
    )


# --- Executing a run ---------------------------------------------------------------------------------------


def option_texts(task: Task, revision: InstructionRevision, instance: Instance) -> tuple[str, ...]:
    """What the model may answer: letters, the option texts, or the phrasing's own label words for them."""
    return answer_texts(task, revision.labels, instance)


def answer_texts(task: Task, labels: list[str] | None, instance: Instance) -> tuple[str, ...]:
    """option_texts for label words given directly (a draft in the authoring preview has no revision yet)."""
    if task.answer_format == Task.AnswerFormat.LETTER:
        return tuple(templating.LETTERS[: len(instance.options)])
    if labels:
        words = dict(zip(task.label_space, labels))
        return tuple(words.get(option, option) for option in instance.options)
    return tuple(instance.options)


def scoring_run_execute(
    *,
    run_id: int,
    task_id: str,
    worker: str = "",
    on_progress: Callable[[int, int], None] | None = None,
    resume_token: str | None = None,
) -> ScoringRun | None:
    """Claim the run and fill in its missing cells. Returns None when another delivery holds the claim.
    If the database goes away, the run is handed back and DatabaseInterrupted says which claim to resume."""
    token = leases.claim(ScoringRun, run_id, task_id=task_id, worker=worker, resume_token=resume_token)
    if token is None:
        log.info("Run %s is not claimable by %s (finished, cancelled or held elsewhere).", run_id, task_id)
        return None
    run = ScoringRun.objects.select_related("variant__model").get(id=run_id)
    try:
        _fill_cells(run, token, on_progress)
        _refresh_figures(run)
    except (ScoringError, ConfigError, templating.TemplateError) as exc:
        _finish(run_id, token, RunStatus.FAILED, error=str(exc))
    except (OperationalError, InterfaceError) as exc:
        leases.release(ScoringRun, run_id, token)
        raise leases.DatabaseInterrupted(f"Database unavailable: {exc}", token) from exc
    except Exception as exc:
        log.exception("Run %s failed unexpectedly.", run_id)
        _finish(run_id, token, RunStatus.FAILED, error=f"Unexpected error ({type(exc).__name__}): {exc}")
    return ScoringRun.objects.get(id=run_id)


def _refresh_figures(run: ScoringRun) -> None:
    from evaluation.aggregates import aggregates_enqueue

    task_ids = run.revisions.values_list("instruction__task_id", flat=True)
    aggregates_enqueue(variant_id=run.variant_id, task_ids=list(task_ids))


def _fill_cells(run: ScoringRun, token: uuid.UUID, on_progress: Callable[[int, int], None] | None) -> None:
    from evaluation.ml.scoring import ScoringItem, score

    model = run.variant.model
    spec = run.variant.spec()
    config = ScoreConfig(batch_size=model.batch_size, device=settings.SCORING_DEVICE)

    # Phase 1: the cells in scope that have no prediction yet.
    cells: list[tuple[InstructionRevision, Instance]] = []
    total = 0
    revisions = run.revisions.select_related("instruction__task")
    for task, task_revisions in revisions_by_task(revisions).items():
        sample = task_eval_sample_ids(task)
        total += len(sample) * len(task_revisions)
        instances = Instance.objects.in_bulk(sample)
        done = set(
            Prediction.objects.filter(
                variant=run.variant, revision__in=task_revisions, instance_id__in=sample
            ).values_list("revision_id", "instance_id")
        )
        cells += [(r, instances[i]) for r in task_revisions for i in sample if (r.id, i) not in done]
    done_count = total - len(cells)
    _heartbeat(run.id, token, done=done_count, total=total, config={"model": asdict(spec), "score": asdict(config)})
    if on_progress:
        on_progress(done_count, total)

    # Phase 2: score them batch by batch, storing each batch as it comes so a killed run loses little.
    if cells:
        loaded = _models.get(spec, config.device)
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
                revision, instance = cells[index]
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
                    )
                )
            with transaction.atomic():
                # A redelivered job may race us to a cell; the unique key keeps exactly one prediction.
                Prediction.objects.bulk_create(predictions, ignore_conflicts=True)
                done_count += len(predictions)
                alive = _heartbeat(run.id, token, done=done_count, total=total)
            if not alive:
                log.info("Run %s was cancelled or taken over; stopping.", run.id)
                return
            if on_progress:
                on_progress(done_count, total)
            if time.monotonic() - last_refresh > AGGREGATE_EVERY_SECONDS:
                # Long runs update the figures as they go, not only at the end.
                _refresh_figures(run)
                last_refresh = time.monotonic()

    exact = Prediction.objects.filter(variant=run.variant, revision__in=run.revisions.all()).count()
    _finish(run.id, token, RunStatus.SUCCEEDED, done=min(exact, total))


def _heartbeat(run_id: int, token: uuid.UUID, *, done: int, total: int, config: dict | None = None) -> bool:
    """Store progress; False when the run is no longer ours (cancelled, or claimed by another delivery)."""
    fields = {"done_cells": Least(Value(done), Value(total)), "total_cells": total, "heartbeat_at": timezone.now()}
    if config is not None:
        fields["config"] = config
    return bool(ScoringRun.objects.filter(id=run_id, claim_token=token, status=RunStatus.RUNNING).update(**fields))


def _finish(run_id: int, token: uuid.UUID, status: str, *, error: str = "", done: int | None = None) -> None:
    fields = {"status": status, "error": error[:5000], "finished_at": timezone.now(), "claim_token": None}
    if done is not None:
        fields["done_cells"] = done
    ScoringRun.objects.filter(id=run_id, claim_token=token, status=RunStatus.RUNNING).update(**fields)


# --- Cancel, retry, recover --------------------------------------------------------------------------------


def scoring_run_cancel(*, run: ScoringRun) -> ScoringRun:
    cancelled = ScoringRun.objects.filter(id=run.id, status__in=ScoringRun.ACTIVE).update(
        status=RunStatus.CANCELLED, finished_at=timezone.now(), claim_token=None
    )
    run.refresh_from_db()
    if not cancelled:
        raise ApplicationError(f"Only a queued or running run can be cancelled; this one has {run.status}.")
    return run


def scoring_run_retry(*, run: ScoringRun) -> ScoringRun:
    """Queue a failed or cancelled run again; cells it already scored are kept and skipped."""
    retried = ScoringRun.objects.filter(id=run.id, status__in=[RunStatus.FAILED, RunStatus.CANCELLED]).update(
        status=RunStatus.QUEUED, error="", finished_at=None, claim_token=None, claimed_by_task=""
    )
    run.refresh_from_db()
    if not retried:
        raise ApplicationError(f"Only a failed or cancelled run can be retried; this one is {run.status}.")
    _enqueue(run.id)
    return run


def scoring_runs_sweep() -> int:
    """The outbox sweep (every minute, from the scheduler) for scoring runs; see leases.to_sweep."""
    ids = leases.to_sweep(ScoringRun)
    for run_id in ids:
        _enqueue(run_id)
    return len(ids)


def scoring_runs_recover() -> int:
    """Send queued runs and runs whose worker stopped heartbeating to the broker again.

    Runs at worker start-up. Duplicates are harmless: only one delivery wins the claim. A running run with a
    fresh heartbeat is re-sent with a delay of one lease, so the copy can take over only if its holder died.
    """
    lease = settings.SCORING_LEASE_SECONDS
    stale = timezone.now() - timedelta(seconds=lease)
    active = ScoringRun.objects.filter(status__in=ScoringRun.ACTIVE).values_list("id", "status", "heartbeat_at")
    for run_id, status, heartbeat in active:
        fresh = status == RunStatus.RUNNING and heartbeat is not None and heartbeat >= stale
        _enqueue(run_id, countdown=lease + 1 if fresh else None)
    return len(active)
