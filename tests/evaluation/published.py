"""Test helper: a published-results row (per-phrasing accuracies, no instances) on given phrasings."""

from __future__ import annotations

from collection.models import Instruction
from evaluation.leaderboards.aggregates import aggregates_refresh_many
from evaluation.models import LanguageModel, ModelVariant, PhrasingResult, ResultSource, VariantKind


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
