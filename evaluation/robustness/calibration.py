"""Batch calibration (Zhou et al., ICLR 2024, "Batch Calibration") as a model variant: an inference-only
baseline to the soft prompts, on the leaderboard's held-out views beside them.

The rule, per held-out phrasing of a task: the batch is the task's evaluation sample under that phrasing. With
p(o | x) the softmax over the options of the base model's summed log-likelihoods, the phrasing's bias towards
each option is its mean probability over the batch, prior(o) = mean_x p(o | x), and the calibrated score is
log p(o | x) - log prior(o); the prediction is its argmax. No gold answer is read to calibrate (the batch is
unlabeled); gold answers only mark the calibrated predictions right or wrong, as for every variant.

Where it runs: not in the scorer. The scorer fills a phrasing in chunks, across deliveries and runs, so it
never holds a whole batch; the base model's stored per-option scores (Prediction.logliks, what the scorer
writes) are all calibration needs, so it loads no model and needs no GPU. The variant's predictions are
stored like any other variant's, and the aggregate job turns them into its figures (aggregates.py), so the
leaderboard, the model page and reproduce_study read calibration from the same rows.

Which phrasings: the held-out ones (evaluation/split.py), as a soft prompt is judged on, that the base model
has scored on the whole sample (a part of a batch would estimate another prior; the phrasing joins when
complete). A task whose instances differ in number of options has no per-option prior and is skipped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from django.db import transaction

from collection.models import Instance, InstructionRevision, Task
from collection.selectors import task_eval_sample_ids
from core import jobs
from evaluation import split
from evaluation.leaderboards import aggregates
from evaluation.models import LanguageModel, ModelVariant, Prediction, VariantKind
from evaluation.runs.scoring import approved_revisions, base_variant, revisions_by_task

log = logging.getLogger(__name__)

PROVENANCE = "batch calibration of the base model's option scores (Zhou et al., ICLR 2024)"


def calibrated_scores(logliks: np.ndarray) -> np.ndarray:
    """(instances, options) summed log-likelihoods of one phrasing's batch -> calibrated log-scores."""
    logliks = np.asarray(logliks, dtype=float)
    logp = logliks - np.logaddexp.reduce(logliks, axis=1, keepdims=True)
    # log mean_x p(o | x), computed in log space so that a tiny probability does not underflow to log 0.
    prior = np.logaddexp.reduce(logp, axis=0) - np.log(len(logp))
    return logp - prior


@dataclass
class Calibration:
    """What one calibration did, per task slug: phrasings calibrated, or why the task was skipped."""

    calibrated: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    waiting: dict[str, int] = field(default_factory=dict)  # held-out phrasings the base has not fully scored

    @property
    def phrasings(self) -> int:
        return sum(self.calibrated.values())


def calibrated_variant(model: LanguageModel) -> ModelVariant | None:
    return model.variants.filter(kind=VariantKind.CALIBRATED).first()


def calibration_queue(*, model: LanguageModel) -> ModelVariant:
    """Make the model's calibrated variant and calibrate it in a worker (light work: the `default` queue)."""
    base_variant(model)  # refuses a model of published results only: it has no option scores to calibrate
    variant, _ = ModelVariant.objects.get_or_create(
        model=model, kind=VariantKind.CALIBRATED, defaults={"provenance": PROVENANCE}
    )
    jobs.send_on_commit("evaluation.calibrate", model.id, what=f"batch calibration of {model.name}")
    return variant


def variant_calibrate(*, model: LanguageModel, task: Task | None = None) -> Calibration:
    """Calibrate the base model's held-out predictions (of one task, or all) into the calibrated variant,
    made if missing, and refresh its figures. Running it again rewrites the same cells."""
    base = base_variant(model)  # first: it refuses a model of published results only
    variant, _ = ModelVariant.objects.get_or_create(
        model=model, kind=VariantKind.CALIBRATED, defaults={"provenance": PROVENANCE}
    )
    revisions = [
        r for r in approved_revisions(task, model=model) if split.is_heldout(r.instruction.stable_key)
    ]
    report = Calibration()
    for group_task, task_revisions in sorted(revisions_by_task(revisions).items(), key=lambda p: p[0].id):
        _calibrate_task(variant, base, group_task, task_revisions, report)
    return report


def calibration_follow_base(*, variant_id: int, task_id: int) -> None:
    """After the base model's figures on a task are refreshed (it scored more, or a phrasing changed status),
    recalibrate that task if the model has a calibrated variant, so the variant keeps up with its base."""
    variant = ModelVariant.objects.select_related("model").filter(id=variant_id).first()
    if variant is None or variant.kind != VariantKind.BASE or calibrated_variant(variant.model) is None:
        return
    variant_calibrate(model=variant.model, task=Task.objects.get(id=task_id))


def calibrated_predictions(
    base: ModelVariant,
    task: Task,
    revisions: list[InstructionRevision],
    report: Calibration,
    variant: ModelVariant | None = None,
) -> list[Prediction]:
    """The calibrated predictions (unsaved) of the task's revisions that the base model has scored on the
    whole evaluation sample, from its stored option scores; the report says what was left and why."""
    sample = task_eval_sample_ids(task)
    by_revision: dict[int, dict[int, tuple]] = {r.id: {} for r in revisions}
    rows = Prediction.objects.filter(
        variant=base, revision__in=revisions, instance_id__in=sample
    ).values_list("revision_id", "instance_id", "logliks", "lengths", "truncated")
    for revision_id, instance_id, logliks, lengths, truncated in rows.iterator(chunk_size=10_000):
        by_revision[revision_id][instance_id] = (logliks, lengths, truncated)
    complete = [r for r in revisions if sample and len(by_revision[r.id]) == len(sample)]
    if len(complete) < len(revisions):
        report.waiting[task.slug] = len(revisions) - len(complete)
    widths = {len(cell[0]) for r in complete for cell in by_revision[r.id].values()}
    if len(widths) > 1:
        report.skipped[task.slug] = "its instances differ in number of options: no per-option prior"
        complete = []
    gold = dict(Instance.objects.filter(id__in=sample).values_list("id", "gold"))
    predictions = []
    for revision in complete:
        cells = by_revision[revision.id]
        scores = calibrated_scores([cells[i][0] for i in sample])
        for instance_id, row in zip(sample, scores, strict=True):
            predicted = int(np.argmax(row))
            predictions.append(
                Prediction(
                    variant=variant,
                    revision=revision,
                    instance_id=instance_id,
                    logliks=[float(s) for s in row],
                    lengths=cells[instance_id][1],
                    predicted=predicted,
                    correct=predicted == gold[instance_id],
                    truncated=cells[instance_id][2],
                )
            )
    if complete:
        report.calibrated[task.slug] = len(complete)
    return predictions


def _calibrate_task(
    variant: ModelVariant,
    base: ModelVariant,
    task: Task,
    revisions: list[InstructionRevision],
    report: Calibration,
) -> None:
    predictions = calibrated_predictions(base, task, revisions, report, variant)
    with transaction.atomic():
        # Concurrent calibrations of the variant (a click and a base refresh) queue up on its row.
        ModelVariant.objects.select_for_update().get(id=variant.id)
        # Every cell of the task is rewritten: a phrasing's prior depends on its whole batch.
        Prediction.objects.filter(variant=variant, revision__instruction__task=task).delete()
        Prediction.objects.bulk_create(predictions, batch_size=5_000)
        aggregates.aggregates_refresh_many({(variant.id, task.id)})
