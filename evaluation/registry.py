"""The model registry: register a model and queue the scoring of every approved phrasing on it."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction

from core.errors import ApplicationError
from evaluation.ml.config import ConfigError, ModelSpec
from evaluation.models import LanguageModel, RunTrigger, ScoringRun
from evaluation.scoring import base_variant, scoring_runs_for_variant


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


def language_model_score_missing(
    *, model: LanguageModel, trigger: str = RunTrigger.MANUAL, by=None
) -> list[ScoringRun]:
    """Queue every approved phrasing the model has not scored yet (admin's "register" and "score" actions)."""
    return scoring_runs_for_variant(variant=base_variant(model), trigger=trigger, by=by)
