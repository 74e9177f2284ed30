"""Test helpers: results without a model run. A published-results row (per-phrasing accuracies, no instances)
on given phrasings, and a row scored here from hand-written predictions."""

from __future__ import annotations

import numpy as np

from collection.models import Instance, Instruction
from collection.selectors import task_eval_sample_ids
from evaluation.leaderboards.aggregates import aggregates_refresh_many
from evaluation.models import (
    LanguageModel,
    ModelVariant,
    PhrasingResult,
    Prediction,
    ResultSource,
    VariantKind,
)
from evaluation.runs import scoring


def imported_variant(name: str, accuracies: dict[Instruction, float]) -> ModelVariant:
    model = LanguageModel.objects.create(
        name=name, source="published results", family="seq2seq", is_active=False
    )
    variant = ModelVariant.objects.create(model=model, kind=VariantKind.IMPORTED)
    for instruction, accuracy in accuracies.items():
        PhrasingResult.objects.create(
            variant=variant,
            revision=instruction.current_revision,
            task=instruction.task,
            accuracy=accuracy,
            source=ResultSource.IMPORTED,
        )
    aggregates_refresh_many({(variant.id, task_id) for task_id in {i.task_id for i in accuracies}})
    return variant


def synthetic_variant(name: str, seed: int = 0) -> ModelVariant:
    """A model (never loaded) with hand-written predictions, log-likelihoods and lengths on every approved
    phrasing it would score and every instance of each task's evaluation sample (the predicted option is the
    most likely one), summarised."""
    model = LanguageModel.objects.create(name=name, source="/nowhere", family="seq2seq")
    variant = scoring.base_variant(model)
    rng = np.random.default_rng(seed)
    rows, tasks = [], set()
    for revision in scoring.approved_revisions(model=model):
        task = revision.instruction.task
        tasks.add(task.id)
        for instance in Instance.objects.filter(id__in=task_eval_sample_ids(task)):
            width = len(instance.options)
            logliks = [round(float(v), 4) for v in rng.normal(-2, 1.0, width)]
            predicted = int(np.argmax(logliks))
            rows.append(
                Prediction(
                    variant=variant,
                    revision=revision,
                    instance=instance,
                    logliks=logliks,
                    lengths=[int(v) for v in rng.integers(1, 4, width)],
                    predicted=predicted,
                    correct=predicted == instance.gold,
                )
            )
    Prediction.objects.bulk_create(rows)
    aggregates_refresh_many({(variant.id, task_id) for task_id in tasks})
    return variant
