"""Reads for the model and run pages. Lists use one query for their counts, never one per row."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet
from django.shortcuts import get_object_or_404

from evaluation.models import LanguageModel, RunStatus, ScoringRun


def model_list() -> QuerySet[LanguageModel]:
    return LanguageModel.objects.annotate(
        active_runs=Count("variants__runs", filter=Q(variants__runs__status__in=ScoringRun.ACTIVE), distinct=True),
        predictions=Count("variants__predictions", distinct=True),
    ).prefetch_related("tuned_on")


def model_get(name: str) -> LanguageModel:
    return get_object_or_404(LanguageModel.objects.prefetch_related("tuned_on"), name=name)


def run_list(*, status: str | None = None, model: LanguageModel | None = None) -> QuerySet[ScoringRun]:
    runs = ScoringRun.objects.select_related("variant__model", "task__benchmark", "instruction", "created_by")
    if status in RunStatus.values:
        runs = runs.filter(status=status)
    if model is not None:
        runs = runs.filter(variant__model=model)
    return runs


def run_get(run_id: int) -> ScoringRun:
    return get_object_or_404(run_list(), id=run_id)
