"""The model registry: register a model, check on a worker that it loads, and queue the scoring of every
approved phrasing on it once it does.

The web process never loads model code or weights. Registering a model saves it as `checking` and queues a
ModelCheck on the `gpu` queue; the check loads the model where scoring will (through the worker's warm-model
cache), stores what the web process needs to know about it (its chat template and the special tokens the
template reads, its input length), and makes it `ready`, or `failed` with the loader's reason. Scoring starts
only on a ready model: the check's success queues the registration's runs, and approvals, imports and "score
what is missing" pass models that are not ready over. Commands and the demo run the check in the foreground
(`check_now=True`): they run where the model is.

    register ──> checking ──(loads)──> ready ──(runs queued if the check says so)
                    │  ^
                    │  └──── retry (a new check) ────┐
                    └──(does not load)──> failed ─────┘
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, ClassVar

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from core import jobs
from core.errors import ApplicationError
from core.jobs import JobStatus
from core.parsing import slug_problem
from evaluation.ml.config import ConfigError, ModelSpec, ScoreConfig
from evaluation.ml.errors import ScoringError
from evaluation.models import (
    Dtype,
    LanguageModel,
    ModelCheck,
    Prediction,
    PromptFormat,
    RunTrigger,
    ScoringRun,
    Truncation,
)
from evaluation.runs.scoring import base_variant, scoring_bulk, warm_model

if TYPE_CHECKING:
    from evaluation.ml.loading import ModelFacts

# Errors that fail a check with their own message (the loader's reason, a chat template that cannot frame a
# prompt); anything else fails it as unexpected, with its type. Named by ModelCheck's declaration (`job`).
CHECK_FAILURES = (ScoringError, ConfigError)


@dataclass(frozen=True)
class ModelRegistration:
    """What registering a model takes, with its defaults, in one place: the registry, the API (which passes what
    a request gave) and the register_model command (whose options default to these) all read it."""

    name: str
    source: str
    family: str
    revision: str = ""
    dtype: str = Dtype.AUTO.value
    prompt_format: str = PromptFormat.NONE.value
    tuned_on: Iterable = ()  # Collection rows: its observed phrasings
    batch_size: int | None = ScoreConfig.batch_size  # None: automatic (ScoreConfig)
    description: str = ""
    trust_remote_code: bool = False
    max_input_tokens: int | None = None  # None: the check reads the model's own (_input_limit_after_check)
    truncation: str = Truncation.KEEP_END.value
    benchmarks: Iterable = ()  # Benchmark rows: scored on these only; none: every benchmark

    RELATIONS: ClassVar[tuple[str, ...]] = ("tuned_on", "benchmarks")

    def columns(self) -> dict:
        """The LanguageModel row's own fields (its relations are set apart)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in self.RELATIONS}

    def validate(self) -> None:
        """Refuse what could never load or score, before anything is saved."""
        problem = slug_problem(self.name, "The model name")
        if problem:
            raise ApplicationError(f"{problem}.")
        columns = self.columns()
        try:
            ModelSpec(**{f.name: columns[f.name] for f in fields(ModelSpec) if f.name in columns})
        except ConfigError as exc:
            raise ApplicationError(f"The model cannot be registered: {exc}") from exc
        if self.batch_size is not None and self.batch_size < 1:
            raise ApplicationError("The batch size must be at least 1, or blank for automatic.")


def language_model_register(
    *, by=None, score: bool = True, check_now: bool = False, **registration
) -> LanguageModel:
    """Register a model (`registration`: ModelRegistration's fields, by name) and queue its check; once it
    loads, `score` queues every approved phrasing on it. check_now=True runs the check here, before returning,
    instead of on a GPU worker: for commands and the demo, which run where the model is (never for a web
    request). The model comes back as the check left it. Its scoring is bulk work: over the budget it is
    planned for an admin to start (evaluation/runs/budget.py)."""
    given = ModelRegistration(**registration)
    given.validate()
    if LanguageModel.objects.filter(name=given.name).exists():
        raise ApplicationError(f"A model named '{given.name}' is already registered.")
    with transaction.atomic():
        model = LanguageModel.objects.create(
            **given.columns(), state=LanguageModel.State.CHECKING, created_by=by
        )
        model.tuned_on.set(list(given.tuned_on))
        model.benchmarks.set(list(given.benchmarks))
        base_variant(model)
        check = _check_create(
            model=model, trigger=RunTrigger.REGISTRATION, score=score, by=by, enqueue=not check_now
        )
    if check_now:
        language_model_check_execute(check_id=check.id, task_id=f"cli-{uuid.uuid4()}")
        model.refresh_from_db()
    return model


def language_model_score_missing(
    *, model: LanguageModel, trigger: str = RunTrigger.MANUAL, by=None
) -> list[ScoringRun]:
    """Queue every approved phrasing the model has not scored yet (the model page's and admin's "score"
    actions), or plan it for an admin when it is over the budget. Refused while the model is not ready:
    its runs would only fail."""
    model.refresh_from_db(fields=["state"])
    if not model.is_ready:
        raise ApplicationError(_not_ready(model))
    return scoring_bulk(variants=[base_variant(model)], trigger=trigger, by=by)


INPUT_LIMIT_FIXED = (
    "Its input length and truncation are fixed: its predictions were scored under them, and cells cut to "
    "another limit would not compare. Register it again under another name to score it under another."
)


def input_limit_is_fixed(model: LanguageModel) -> bool:
    """A model's input length and truncation side are fixed once it has predictions (INPUT_LIMIT_FIXED)."""
    return Prediction.objects.filter(variant__model=model).exists()


def _input_limit_after_check(model: LanguageModel, facts: ModelFacts) -> int | None:
    """The limit a check leaves: one given at registration or in admin, or one its cells were scored under
    (none, for a model scored before it had one), stays; otherwise the model's own, read by the check."""
    if model.max_input_tokens is not None or input_limit_is_fixed(model):
        return model.max_input_tokens
    return facts.max_input_tokens


def _not_ready(model: LanguageModel) -> str:
    if model.state == LanguageModel.State.FAILED:
        return f"{model.name} does not load, so it cannot be scored; fix it and retry its check."
    return f"{model.name} is still being checked; its scoring starts once a worker has loaded it."


# --- The check -------------------------------------------------------------------------------------------


def language_model_check(
    *,
    model: LanguageModel,
    trigger: str = RunTrigger.MANUAL,
    score: bool = True,
    by=None,
    enqueue: bool = True,
) -> ModelCheck:
    """Check the model again (after an admin changed where it loads from, or to retry a failed check): it is
    `checking`, so nothing new is scored on it, until the check finds it loads."""
    if model.carries_published_results_only:
        raise ApplicationError(f"{model.name} carries published results only; there is no model to check.")
    with transaction.atomic():
        check = _check_create(model=model, trigger=trigger, score=score, by=by, enqueue=enqueue)
    model.refresh_from_db()
    return check


def language_model_check_retry(*, model: LanguageModel, by=None) -> ModelCheck:
    """Check a model again, as a new check (a failed one stays as the record): after a failure, once the
    cause is fixed, or to store what a model registered before checks existed never had stored. If the last
    check was to queue the model's scoring, so is this one (only cells still missing are queued)."""
    if model.checks.filter(status__in=ModelCheck.ACTIVE).exists():
        raise ApplicationError(f"{model.name} is being checked already.")
    last = model.checks.order_by("-id").first()
    return language_model_check(
        model=model,
        trigger=last.trigger if last else RunTrigger.MANUAL,
        score=last.score if last else True,
        by=by,
    )


def _check_create(*, model: LanguageModel, trigger: str, score: bool, by, enqueue: bool) -> ModelCheck:
    try:
        with transaction.atomic():
            check = ModelCheck.objects.create(model=model, trigger=trigger, score=score, created_by=by)
    except IntegrityError:
        raise ApplicationError(f"{model.name} is being checked already.") from None
    LanguageModel.objects.filter(id=model.id).update(state=LanguageModel.State.CHECKING, check_error="")
    if enqueue:
        jobs.enqueue(ModelCheck, check.id)
    return check


def language_model_check_execute(*, check_id: int, task_id: str, worker: str = "") -> ModelCheck | None:
    """Run a check in this process (the foreground path); None when another delivery holds it."""
    return jobs.execute(ModelCheck, check_id, task_id=task_id, worker=worker)


def language_model_check_work(check: ModelCheck, token: uuid.UUID) -> None:
    """A check's work: load the model as scoring will, read off its facts, and make it ready (queueing its
    scoring if the check says so), or failed with the reason."""
    from evaluation.ml.loading import model_facts  # torch: only a process that loads a model imports it

    model = LanguageModel.objects.get(id=check.model_id)
    try:
        loaded = warm_model(model.spec(), settings.WORKER_DEVICE)
        facts = model_facts(loaded)
    except jobs.DATABASE_ERRORS:
        raise  # core/jobs.py hands the check back and retries it; the model stays checking
    except Exception as exc:
        reason = jobs.failure_reason(ModelCheck, exc)
        if jobs.holds(ModelCheck, check.id, token):
            LanguageModel.objects.filter(id=model.id).update(
                state=LanguageModel.State.FAILED, check_error=reason[:5000] or type(exc).__name__
            )
        raise  # and core/jobs.py fails the check with the same reason

    with transaction.atomic():
        if jobs.lock_if_held(ModelCheck, check.id, token) is None:
            return  # cancelled, or taken over by another delivery
        LanguageModel.objects.filter(id=model.id).update(
            state=LanguageModel.State.READY,
            check_error="",
            checked_at=timezone.now(),
            chat_template=facts.chat_template,
            special_tokens=facts.special_tokens,
            max_input_tokens=_input_limit_after_check(model, facts),
        )
        jobs.finish(ModelCheck, check.id, token, JobStatus.SUCCEEDED)
        if check.score:
            # Sent to the broker when this commits, as a registration's runs always were (or planned for an
            # admin when over the budget).
            scoring_bulk(variants=[base_variant(model)], trigger=check.trigger, by=check.created_by)
