"""A model's accuracy on the phrasings with each tag against its other phrasings (the maths is
evaluation/stats/tag_effects.py): "are terse phrasings worse on this model?", with an interval. Read from the
stored per-phrasing results (PhrasingResult), so it costs two queries and no scan of predictions."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from django.db.models import Count, F

from collection.models import Instruction, PhrasingTag
from evaluation.models import OWN_KINDS, LanguageModel, PhrasingResult
from evaluation.stats.tag_effects import MIN_PER_GROUP, TagEffect, tag_effect


@dataclass(frozen=True)
class TagRow:
    tag: PhrasingTag
    phrasings: int  # approved phrasings with the tag and a complete result on the model
    effect: TagEffect | None  # None: no task has MIN_PER_GROUP phrasings on each side


def model_tag_effects(model: LanguageModel, *, seed: int = 0) -> list[TagRow]:
    """One row per tag that any of the model's scored (or published) approved phrasings carries."""
    results = PhrasingResult.objects.filter(
        variant__model=model,
        variant__kind__in=OWN_KINDS,
        complete=True,
        revision__instruction__status=Instruction.Status.APPROVED,
        revision_id=F("revision__instruction__current_revision_id"),
    )
    # A model has one base (or published) variant; should it have both, the one with more results speaks.
    variant = results.values("variant_id").annotate(n=Count("id")).order_by("-n", "variant_id").first()
    if variant is None:
        return []
    rows = list(
        results.filter(variant_id=variant["variant_id"]).values_list(
            "task_id", "revision__instruction_id", "accuracy"
        )
    )
    tags_of: dict[int, set[int]] = defaultdict(set)
    for instruction_id, tag_id in Instruction.tags.through.objects.filter(
        instruction_id__in={instruction for _, instruction, _ in rows}
    ).values_list("instruction_id", "phrasingtag_id"):
        tags_of[instruction_id].add(tag_id)
    used = {tag_id for tags in tags_of.values() for tag_id in tags}
    by_task: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for task_id, instruction_id, accuracy in rows:
        by_task[task_id].append((instruction_id, accuracy))
    out = []
    for tag in PhrasingTag.objects.filter(id__in=used):
        split = [
            (
                [acc for instruction, acc in phrasings if tag.id in tags_of[instruction]],
                [acc for instruction, acc in phrasings if tag.id not in tags_of[instruction]],
            )
            for phrasings in by_task.values()
        ]
        count = sum(len(tagged) for tagged, _ in split)
        out.append(TagRow(tag, count, tag_effect(split, seed=seed)))
    return out


__all__ = ["MIN_PER_GROUP", "TagRow", "model_tag_effects"]
