"""Soft prompts as a service: queue a training (by hand, from the command or automatically as the approved
pool grows), execute it in a worker (claimed like a scoring run, so a redelivered job finishes it exactly
once), record what it saw, register its model variant and score it on the held-out phrasings."""

from __future__ import annotations

import functools
import hashlib
import logging
import shutil
import uuid
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from collection import templating
from collection.answers import option_texts
from collection.models import Instance, InstructionRevision, Task
from collection.selectors import approved_phrasings
from core import jobs
from core.jobs import JobStatus
from evaluation.ml.config import AlignConfig, ConfigError
from evaluation.ml.errors import ScoringError
from evaluation.ml.items import ScoringItem, TrainingTask
from evaluation.models import LanguageModel, ModelVariant, RunTrigger, SoftPrompt, VariantKind
from evaluation.runs.scoring import base_variant, scoring_runs_for_variant
from evaluation.split import app_seed, is_heldout

log = logging.getLogger(__name__)

CURVE_EVERY_STEPS = 5  # how often a running training writes its curve and heartbeat


# --- The pool ------------------------------------------------------------------------------------------


def training_pool(
    model: LanguageModel, split_seed: int | None = None
) -> tuple[list[InstructionRevision], list[InstructionRevision]]:
    """(training, held-out) revisions among the approved phrasings the model scores (those written for
    another prompt format, or of benchmarks it is not limited to, are not its to learn from), split under
    `split_seed` (default: SOFTPROMPT_SPLIT_SEED)."""
    training, heldout = [], []
    phrasings = approved_phrasings(prompt_format=model.prompt_format)
    if model.benchmarks.exists():
        phrasings = phrasings.filter(task__benchmark__in=model.benchmarks.all())
    for instruction in phrasings:
        held = is_heldout(instruction.stable_key, seed=split_seed)
        (heldout if held else training).append(instruction.current_revision)
    return training, heldout


# --- Queueing ------------------------------------------------------------------------------------------


# The methods the model page offers, issue 19's baselines beside the study's method: each is the model's last
# settings with the method's objective and loss weights.
ALIGN_METHODS = {
    "align": (
        "the study's alignment (CE + KL + representation)",
        {"objective": "align", "lambda_kl": 1.0, "lambda_rep": 1.0},
    ),
    "ce": ("plain prompt tuning (CE only)", {"objective": "align", "lambda_kl": 0.0, "lambda_rep": 0.0}),
    "consistency": ("prompt consistency (swarm distillation, no labels)", {"objective": "consistency"}),
}


def last_config(model: LanguageModel) -> AlignConfig:
    """The settings of the model's last training, or the defaults."""
    previous = SoftPrompt.objects.filter(model=model).exclude(config={}).order_by("-id").first()
    return AlignConfig(**previous.config) if previous else AlignConfig()


def method_config(model: LanguageModel, method: str) -> AlignConfig:
    """The model's last settings with one of ALIGN_METHODS' objectives and weights. Consistency stops early on
    its unsupervised criterion (SOFTPROMPT_CONSISTENCY_PATIENCE); the labelled methods never do."""
    patience = settings.SOFTPROMPT_CONSISTENCY_PATIENCE if method == "consistency" else 0
    return replace(last_config(model), **ALIGN_METHODS[method][1], patience=patience)


def softprompt_queue(
    *,
    model: LanguageModel,
    trigger: str = RunTrigger.MANUAL,
    by=None,
    config=None,
    enqueue: bool = True,
    split_seed: int | None = None,
) -> SoftPrompt:
    """Queue a training of the model's soft prompt, or return the one already queued or running: at most
    one per model at a time, enforced by a unique constraint so that concurrent triggers cannot both win.
    It holds out the phrasings of `split_seed` (default: SOFTPROMPT_SPLIT_SEED; another seed measures how
    much a finding depends on which phrasings were held out, as `reproduce_study --split-seeds` does)."""
    base_variant(model)  # refuses a model of published results only: there are no weights to prompt
    config = last_config(model) if config is None else config
    split_seed = app_seed(split_seed)
    training, _ = training_pool(model, split_seed)
    try:
        with transaction.atomic():
            soft = SoftPrompt.objects.create(
                model=model,
                trigger=trigger,
                config=asdict(config),
                split_seed=split_seed,
                pool_size=len(training),
                steps_total=config.steps * config.grad_accumulation,
                created_by=by,
            )
    except IntegrityError:
        active = SoftPrompt.objects.filter(model=model, status__in=SoftPrompt.ACTIVE).first()
        if active is None:  # it finished between our insert and this read: queue again
            return softprompt_queue(
                model=model, trigger=trigger, by=by, config=config, enqueue=enqueue, split_seed=split_seed
            )
        return active
    if enqueue:
        jobs.enqueue(SoftPrompt, soft.id)
    return soft


def softprompt_retrain_if_grown(*, model: LanguageModel, by=None) -> SoftPrompt | None:
    """Queue a retraining when the approved training pool has grown by SOFTPROMPT_RETRAIN_AFTER phrasings
    since the model's last soft prompt (its first, counting from an empty pool). Models not marked `align`
    are left alone."""
    if not (model.align and model.is_active):
        return None
    if SoftPrompt.objects.filter(model=model, status__in=SoftPrompt.ACTIVE).exists():
        return None
    # Counted on the app's split: a soft prompt of another split had another pool.
    last = (
        SoftPrompt.objects.filter(model=model, status=JobStatus.SUCCEEDED, split_seed=app_seed())
        .order_by("-id")
        .first()
    )
    grown = len(training_pool(model)[0]) - (last.pool_size if last else 0)
    if grown < settings.SOFTPROMPT_RETRAIN_AFTER:
        return None
    return softprompt_queue(model=model, trigger=RunTrigger.APPROVAL, by=by)


def softprompts_on_approval(*, by=None) -> list[SoftPrompt]:
    """Called in the approval's transaction: retrain whichever aligned models' pools have grown enough."""
    queued = []
    for model in LanguageModel.objects.scorable().filter(align=True):
        soft = softprompt_retrain_if_grown(model=model, by=by)
        if soft is not None:
            queued.append(soft)
    return queued


def softprompt_retry(soft_prompt: SoftPrompt) -> SoftPrompt:
    """A failed or cancelled training, queued again as a new one with the same config: unlike a scoring run
    (core.jobs.requeue), the failed training keeps its curve and error as the record of what happened. The
    soft-prompt kind's retry (SoftPrompt.job): core.jobs.retry calls it with the training."""
    jobs.ensure_retryable(soft_prompt)
    return softprompt_queue(
        model=soft_prompt.model,
        trigger=RunTrigger.MANUAL,
        config=AlignConfig(**soft_prompt.config),
        split_seed=soft_prompt.split_seed,
    )


# --- Execution -----------------------------------------------------------------------------------------


def _training_tasks(model: LanguageModel, training: list[InstructionRevision]):
    """Per task with training phrasings and training instances: a TrainingTask over a fixed seeded sample
    of its train split (the evaluation split is never trained on)."""
    tuned_on = set(model.tuned_on.values_list("id", flat=True))
    by_task: dict[Task, list[InstructionRevision]] = {}
    for revision in training:
        by_task.setdefault(revision.instruction.task, []).append(revision)
    tasks, instance_ids = [], {}
    for task, revisions in sorted(by_task.items(), key=lambda pair: pair[0].id):
        rows = list(
            Instance.objects.filter(Q(task=task) | Q(task__parent=task), split=Instance.Split.TRAIN)
            .select_related("task")
            .order_by("id")
        )
        if not rows:
            log.info("%s has no training instances; its phrasings are not trained on.", task)
            continue
        rows.sort(key=lambda i: hashlib.sha256(f"{i.task.slug}:{i.source_id}".encode()).hexdigest())
        rows = rows[: settings.SOFTPROMPT_MAX_INSTANCES]
        by_id = {r.id: r for r in revisions}

        def item(revision_id, index, rows=rows, by_id=by_id, task=task):
            revision, instance = by_id[revision_id], rows[index]
            shared, rest = templating.render_parts(revision.template, instance.inputs, instance.options)
            return ScoringItem(shared, rest, option_texts(task, revision, instance))

        tasks.append(
            TrainingTask(
                name=str(task),
                phrasings=tuple(r.id for r in revisions),
                anchors=tuple(r.id for r in revisions if r.instruction.collection_id in tuned_on),
                instance_count=len(rows),
                item=item,
                gold=lambda index, rows=rows: rows[index].gold,
            )
        )
        instance_ids[str(task)] = [r.id for r in rows]
    return tasks, instance_ids


# Errors that fail a training with their message; anything else fails it as unexpected.
FAILURES = (ScoringError, ConfigError, templating.TemplateError)


def softprompt_train_execute(
    *,
    soft_prompt_id: int,
    task_id: str,
    worker: str = "",
    on_step: Callable[[int, int, dict], None] | None = None,
    device: str | None = None,
    enqueue_scoring: bool = True,
    resume_token: str | None = None,
) -> SoftPrompt | None:
    """Claim the training and run it (core/jobs.py's execute). A redelivered job or one whose holder went
    silent may claim it again; training restarts from its seed, so exactly one artifact and one variant."""
    work = functools.partial(
        softprompt_train_work, on_step=on_step, device=device, enqueue_scoring=enqueue_scoring
    )
    return jobs.execute(
        SoftPrompt,
        soft_prompt_id,
        work=work,
        task_id=task_id,
        worker=worker,
        resume_token=resume_token,
    )


def softprompt_train_work(
    soft: SoftPrompt,
    token: uuid.UUID,
    *,
    on_step=None,
    device: str | None = None,
    enqueue_scoring: bool = True,
) -> None:
    """A training's work: train, save the artifact, and (still holding the claim) record it as succeeded,
    with its variant and the held-out scoring runs, in one transaction."""
    soft = SoftPrompt.objects.select_related("model").get(id=soft.id)
    device = device or settings.WORKER_DEVICE
    config = AlignConfig(**soft.config)
    # The split recorded at queueing, not today's setting: the two agree unless the setting changed since.
    training, heldout = training_pool(soft.model, soft.split_seed)
    tasks, instance_ids = _training_tasks(soft.model, training)
    if not tasks:
        raise ConfigError(
            "Nothing to train on: no task has both approved training phrasings and training-split instances."
        )
    # torch, transformers and PEFT: imported by the process that trains, not by every process that loads the app.
    from evaluation.ml import softprompt as ml
    from evaluation.ml.loading import load

    loaded = load(soft.model.spec(), device)
    curve: list[dict] = []

    def step(number: int, record: dict) -> bool:
        curve.append(record)
        if on_step:
            on_step(number, config.steps, record)
        if number % CURVE_EVERY_STEPS and number != config.steps:
            return True
        # False when cancelled or taken over: training stops.
        return jobs.heartbeat(
            SoftPrompt, soft.id, token, steps_done=number * config.grad_accumulation, curve=curve
        )

    peft_model, result = ml.train(loaded, tasks, config, on_step=step)
    if not jobs.holds(SoftPrompt, soft.id, token):
        log.info("Soft prompt %s was cancelled or taken over; not saving.", soft.id)
        return
    directory = Path(settings.SOFTPROMPT_DIR) / soft.model.name / str(soft.id)
    if directory.exists():
        shutil.rmtree(directory)  # a previous delivery's partial artifact
    ml.save(peft_model, result, directory)
    seen = {
        name: sorted([revision_id, instance_ids[name][index]] for revision_id, index in pairs)
        for name, pairs in result.seen.items()
    }
    trained_ids = {revision_id for pairs in seen.values() for revision_id, _ in pairs}
    with transaction.atomic():
        locked = jobs.lock_if_held(SoftPrompt, soft.id, token)
        if locked is None:
            return
        variant = locked.variant or ModelVariant.objects.create(
            model=soft.model, kind=VariantKind.SOFT_PROMPT, provenance=f"soft prompt #{soft.id}"
        )
        jobs.finish(
            SoftPrompt,
            soft.id,
            token,
            JobStatus.SUCCEEDED,
            variant=variant,
            artifact=str(directory),
            seen=seen,
            curve=result.curve,
            steps_done=len(result.curve) * config.grad_accumulation,
            heartbeat_at=timezone.now(),
        )
        locked.training_revisions.set([r for r in training if r.id in trained_ids])
        locked.heldout_revisions.set(heldout)
        # Judged on the held-out phrasings, beside the base model on the same ones.
        scoring_runs_for_variant(
            variant=variant, trigger=RunTrigger.REGISTRATION, by=soft.created_by, enqueue=enqueue_scoring
        )
