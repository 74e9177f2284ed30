"""What a model's soft prompts did: per method (ablation), the improvement over the base model on the held-out
unobserved phrasings, pooled over the method's seeds, with a paired bootstrap interval over phrasings and
instances (paired_bootstrap.paired_improvement), per task and macro-averaged over tasks.

Beside the soft prompts, batch calibration (Zhou et al., ICLR 2024), an inference-only baseline computed from
the base model's stored option log-likelihoods: per phrasing, the options' mean probability over the
instances scored (the "batch", here the task's evaluation sample, unlabeled) estimates the phrasing's bias
towards each option, and the calibrated prediction is argmax_o log p(o | x) - log mean_x' p(o | x').

Cells: the held-out phrasings every soft prompt of the method held out, less those observed for the model
and benchmark defaults, on the instances that the base model and every seed have predictions for. Per cell,
the method's correctness is averaged over its seeds (seeds are fixed, not resampled: with three of them a
seed bootstrap would say little) and the base model's subtracted; each seed's own improvement is reported
beside it, so their spread shows.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from collection.models import Collection, Instruction, InstructionRevision
from collection.selectors import approved_phrasings
from core.jobs import JobStatus
from evaluation import metrics, paired_bootstrap
from evaluation.models import LanguageModel, ModelVariant, Prediction, VariantKind
from evaluation.split import is_heldout


@dataclass(frozen=True)
class MethodOutcome:
    method: str  # the ablation: ce, ce+kl, ce+rep, ce+kl+rep
    seeds: tuple[int, ...]
    base_accuracy: float  # the base model's accuracy on the same cells, macro-averaged over tasks
    macro: paired_bootstrap.Improvement  # macro average over tasks
    per_task: dict[str, paired_bootstrap.Improvement]  # task slug -> improvement
    per_seed: dict[int, float]  # seed -> its own macro-averaged improvement (point only)
    base_per_task: dict[str, float] = field(default_factory=dict)  # task slug -> base accuracy on the cells


def heldout_unobserved_revisions(model: LanguageModel, soft_prompts) -> dict[int, str]:
    """revision id -> task slug: held out by every one of the soft prompts, and unobserved for the model."""
    shared: set[int] | None = None
    for soft in soft_prompts:
        ids = set(soft.heldout_revisions.values_list("id", flat=True))
        shared = ids if shared is None else shared & ids
    tuned_on = set(model.tuned_on.values_list("id", flat=True))
    # Approved ones only: a phrasing retired since is left out, as it is from every other figure.
    rows = (
        InstructionRevision.objects.filter(
            id__in=shared or (), instruction__status=Instruction.Status.APPROVED
        )
        .exclude(instruction__collection_id__in=tuned_on)
        .exclude(instruction__collection__kind=Collection.Kind.BENCHMARK_DEFAULT)
        .values_list("id", "instruction__task__slug")
    )
    return dict(rows)


def _correctness(variants: list[ModelVariant], revisions: dict[int, str]) -> dict:
    """(variant id, revision id, instance id) -> correct, for the given cells."""
    rows = Prediction.objects.filter(variant__in=variants, revision_id__in=revisions).values_list(
        "variant_id", "revision_id", "instance_id", "correct"
    )
    return {(v, r, i): c for v, r, i, c in rows.iterator(chunk_size=10_000)}


def _task_matrices(
    base: ModelVariant, seeds: list[ModelVariant], revisions: dict[int, str], correct: dict
) -> dict[str, tuple[np.ndarray, list[np.ndarray]]]:
    """Per task: the base model's correctness matrix and each seed's, on the cells all of them have."""
    variants = [base, *seeds]
    instances: dict[int, set[int]] = defaultdict(set)
    for v, r, i in correct:
        if v == base.id:
            instances[r].add(i)
    by_task: dict[str, list[int]] = defaultdict(list)
    for revision, task in sorted(revisions.items()):
        by_task[task].append(revision)
    out = {}
    for task, revision_ids in sorted(by_task.items()):
        common = set.intersection(*(instances[r] for r in revision_ids)) if revision_ids else set()
        cells = sorted(
            i for i in common if all((v.id, r, i) in correct for v in variants for r in revision_ids)
        )
        if not cells:
            continue

        def matrix(variant: ModelVariant, revision_ids=revision_ids, cells=cells) -> np.ndarray:
            return np.array([[correct[variant.id, r, i] for i in cells] for r in revision_ids], dtype=float)

        out[task] = (matrix(base), [matrix(v) for v in seeds])
    return out


def heldout_improvements(
    model: LanguageModel, *, samples: int = metrics.BOOTSTRAP_SAMPLES
) -> list[MethodOutcome]:
    """One outcome per method that has succeeded soft prompts with scored held-out phrasings."""
    base = model.variants.get(kind=VariantKind.BASE)
    # The latest soft prompt of each (method, seed): a retraining replaces its predecessor.
    latest = {}
    soft_prompts = model.soft_prompts.filter(status=JobStatus.SUCCEEDED, variant__isnull=False)
    for soft in soft_prompts.select_related("variant").order_by("id"):
        latest[soft.ablation, soft.config.get("seed", 0)] = soft
    by_method: dict[str, list] = defaultdict(list)
    for (method, _seed), soft in sorted(latest.items()):
        by_method[method].append(soft)
    outcomes = []
    for method, softs in by_method.items():
        outcome = _outcome(method, base, softs, heldout_unobserved_revisions(model, softs), samples)
        if outcome is not None:
            outcomes.append(outcome)
    return outcomes


def soft_prompt_outcome(soft, *, samples: int = metrics.BOOTSTRAP_SAMPLES) -> MethodOutcome | None:
    """One soft prompt against the base model on its own held-out unobserved phrasings (its page)."""
    if soft.variant_id is None:
        return None
    base = soft.model.variants.get(kind=VariantKind.BASE)
    revisions = heldout_unobserved_revisions(soft.model, [soft])
    return _outcome(soft.ablation, base, [soft], revisions, samples)


def _outcome(method: str, base: ModelVariant, softs: list, revisions: dict[int, str], samples: int):
    seeds = [soft.variant for soft in softs]
    correct = _correctness([base, *seeds], revisions)
    matrices = _task_matrices(base, seeds, revisions, correct)
    if not matrices:
        return None
    differences = {task: np.mean(runs, axis=0) - b for task, (b, runs) in matrices.items()}
    per_task, macro = paired_bootstrap.paired_improvement(differences, samples=samples)
    per_seed = {
        soft.config.get("seed", 0): float(
            np.mean([runs[s].mean() - b.mean() for b, runs in matrices.values()])
        )
        for s, soft in enumerate(softs)
    }
    base_per_task = {task: float(b.mean()) for task, (b, _) in matrices.items()}
    base_accuracy = float(np.mean(list(base_per_task.values())))
    return MethodOutcome(method, tuple(per_seed), base_accuracy, macro, per_task, per_seed, base_per_task)


BATCH_CALIBRATION = "batch calibration"


def batch_calibration_outcome(
    model: LanguageModel, *, samples: int = metrics.BOOTSTRAP_SAMPLES
) -> MethodOutcome | None:
    """Batch calibration of the base model on its held-out unobserved phrasings (no training, no seeds)."""
    base = model.variants.get(kind=VariantKind.BASE)
    tuned_on = set(model.tuned_on.values_list("id", flat=True))
    # The held-out phrasings as softprompts.training_pool splits them, less observed ones and defaults.
    revisions = {
        phrasing.current_revision_id: phrasing.task.slug
        for phrasing in approved_phrasings(prompt_format=model.prompt_format)
        if is_heldout(phrasing.id)
        and phrasing.collection_id not in tuned_on
        and phrasing.collection.kind != Collection.Kind.BENCHMARK_DEFAULT
    }
    rows = Prediction.objects.filter(variant=base, revision_id__in=revisions).values_list(
        "revision_id", "instance_id", "logliks", "correct", "instance__gold"
    )
    cells: dict[int, dict[int, tuple]] = defaultdict(dict)
    for revision, instance, logliks, correct, gold in rows.iterator(chunk_size=10_000):
        cells[revision][instance] = (logliks, correct, gold)
    by_task: dict[str, list[int]] = defaultdict(list)
    for revision in sorted(cells):
        by_task[revisions[revision]].append(revision)
    differences = {}
    base_accuracy = []
    for task, revision_ids in sorted(by_task.items()):
        common = sorted(set.intersection(*(set(cells[r]) for r in revision_ids)))
        widths = {len(cells[r][i][0]) for r in revision_ids for i in common}
        if not common or len(widths) != 1:
            continue  # options differ in number between instances: no per-option prior to estimate
        plain = np.array([[cells[r][i][1] for i in common] for r in revision_ids], dtype=float)
        calibrated = np.array([_calibrated(cells[r], common) for r in revision_ids], dtype=float)
        differences[task] = calibrated - plain
        base_accuracy.append(plain.mean())
    if not differences:
        return None
    per_task, macro = paired_bootstrap.paired_improvement(differences, samples=samples)
    return MethodOutcome(BATCH_CALIBRATION, (), float(np.mean(base_accuracy)), macro, per_task, {})


def _calibrated(cells: dict[int, tuple], instances: list[int]) -> list[bool]:
    """Per instance: right after batch calibration over these instances?"""
    logliks = np.array([cells[i][0] for i in instances], dtype=float)  # (N, options)
    logp = logliks - np.logaddexp.reduce(logliks, axis=1, keepdims=True)
    prior = np.log(np.exp(logp).mean(axis=0))
    predicted = np.argmax(logp - prior, axis=1)
    return [int(p) == cells[i][2] for p, i in zip(predicted, instances, strict=True)]
