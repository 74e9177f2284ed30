"""What a model's soft prompts did: per method (ablation), the improvement over the base model on the held-out
unobserved phrasings, pooled over the method's seeds, with a paired bootstrap interval over phrasings and
instances (paired_bootstrap.paired_improvement), per task and macro-averaged over tasks.

Beside the soft prompts, batch calibration (evaluation/robustness/calibration.py), an inference-only baseline: its
variant's stored predictions go through the same path as a soft prompt's (one variant, no seeds), so the
figure here is the one its leaderboard rows are computed from.

Cells: the held-out phrasings every variant of the method has (a soft prompt's recorded held-out set, the
phrasings calibration calibrated), each on its current text and where every variant has scored that text,
less retired ones, those observed for the model and benchmark defaults; on the instances of each task's
evaluation sample that the base model and every seed have predictions for. Per cell, the method's
correctness is averaged over its seeds (seeds are fixed, not resampled: with three of them a seed bootstrap
would say little) and the base model's subtracted; each seed's own improvement is reported beside it, so
their spread shows.

Splits: every outcome is on one held-out split (split.py), by default the app's (SOFTPROMPT_SPLIT_SEED). The
soft prompts of another split seed (`reproduce_study --split-seeds`) are judged on that split's held-out
phrasings, so that a finding can be checked over several choices of them; the intervals here are within one
split and do not cover that choice.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from collection.models import Collection, Instruction, InstructionRevision, Task
from collection.selectors import task_eval_sample_ids
from core.jobs import JobStatus
from evaluation.models import LanguageModel, ModelVariant, Prediction, VariantKind
from evaluation.robustness import calibration
from evaluation.runs.scoring import approved_revisions, revisions_by_task
from evaluation.split import app_seed, is_heldout
from evaluation.stats import metrics, paired_bootstrap


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
        # By phrasing, not revision: a phrasing edited between two seeds' trainings is held out by both.
        ids = set(soft.heldout_revisions.values_list("instruction_id", flat=True))
        shared = ids if shared is None else shared & ids
    return _unobserved(model, shared or set())


def _phrasings_of(revision_ids) -> set[int]:
    return set(
        InstructionRevision.objects.filter(id__in=revision_ids).values_list("instruction_id", flat=True)
    )


def _unobserved(model: LanguageModel, instruction_ids: set[int]) -> dict[int, str]:
    """revision id -> task slug: the current revision of each of the phrasings that is still approved and
    unobserved for the model. Membership of a held-out set is the phrasing's (split.py), so a
    phrasing edited since a soft prompt was trained is judged on its current text, as every other figure
    judges it (its old text's predictions would describe a phrasing nobody sees any more); where a variant
    has not scored that text, _task_matrices leaves the phrasing out."""
    tuned_on = set(model.tuned_on.values_list("id", flat=True))
    # Approved ones only: a phrasing retired since is left out, as it is from every other figure.
    rows = (
        Instruction.objects.filter(
            id__in=instruction_ids,
            status=Instruction.Status.APPROVED,
            current_revision__isnull=False,
        )
        .exclude(collection_id__in=tuned_on)
        .exclude(collection__kind=Collection.Kind.BENCHMARK_DEFAULT)
        .values_list("current_revision_id", "task__slug")
    )
    return dict(rows)


def _correctness(variants: list[ModelVariant], revisions: dict[int, str]) -> dict:
    """(variant id, revision id, instance id) -> correct, for the given cells (a variant's key is its id), on
    each task's evaluation sample: a sample made smaller keeps the predictions outside it, which no figure
    counts (leaderboards/aggregates.py)."""
    sample = _samples(revisions)
    rows = Prediction.objects.filter(variant__in=variants, revision_id__in=revisions).values_list(
        "variant_id", "revision_id", "instance_id", "correct"
    )
    return {(v, r, i): c for v, r, i, c in rows.iterator(chunk_size=10_000) if i in sample[r]}


def _samples(revisions) -> dict[int, frozenset[int]]:
    """revision id -> the evaluation sample (instance ids) of its phrasing's task."""
    task_of = dict(
        InstructionRevision.objects.filter(id__in=revisions).values_list("id", "instruction__task_id")
    )
    tasks = Task.objects.in_bulk(set(task_of.values()))
    by_task = {task_id: frozenset(task_eval_sample_ids(task)) for task_id, task in tasks.items()}
    return {revision: by_task[task_id] for revision, task_id in task_of.items()}


def _task_matrices(
    base, seeds: list, revisions: dict[int, str], correct: dict
) -> dict[str, tuple[np.ndarray, list[np.ndarray]]]:
    """Per task: the base model's correctness matrix and each seed's, on the cells all of them have. `base`
    and `seeds` are the keys of `correct` (variant ids)."""
    variants = [base, *seeds]
    instances: dict[int, set[int]] = defaultdict(set)
    scored: dict = defaultdict(set)  # variant key -> the revisions it has predictions for
    for v, r, i in correct:
        scored[v].add(r)
        if v == base:
            instances[r].add(i)
    by_task: dict[str, list[int]] = defaultdict(list)
    for revision, task in sorted(revisions.items()):
        # A phrasing some variant never scored (a text edited after an older seed's training, which only
        # the current soft prompt scores) is left out, not its whole task.
        if all(revision in scored[v] for v in variants):
            by_task[task].append(revision)
    out = {}
    for task, revision_ids in sorted(by_task.items()):
        common = set.intersection(*(instances[r] for r in revision_ids)) if revision_ids else set()
        cells = sorted(i for i in common if all((v, r, i) in correct for v in variants for r in revision_ids))
        if not cells:
            continue

        def matrix(variant, revision_ids=revision_ids, cells=cells) -> np.ndarray:
            return np.array([[correct[variant, r, i] for i in cells] for r in revision_ids], dtype=float)

        out[task] = (matrix(base), [matrix(v) for v in seeds])
    return out


def latest_soft_prompts(model: LanguageModel, split_seed: int | None = None) -> dict[str, list]:
    """Per method, its latest succeeded soft prompt of each seed, by seed, among those trained on the split of
    `split_seed` (default: SOFTPROMPT_SPLIT_SEED): a retraining replaces its predecessor."""
    latest = {}
    soft_prompts = model.soft_prompts.filter(
        status=JobStatus.SUCCEEDED, variant__isnull=False, split_seed=app_seed(split_seed)
    )
    for soft in soft_prompts.select_related("variant").order_by("id"):
        latest[soft.ablation, soft.config.get("seed", 0)] = soft
    by_method: dict[str, list] = defaultdict(list)
    for (method, _seed), soft in sorted(latest.items()):
        by_method[method].append(soft)
    return dict(by_method)


def heldout_improvements(
    model: LanguageModel, *, split_seed: int | None = None, samples: int = metrics.BOOTSTRAP_SAMPLES
) -> list[MethodOutcome]:
    """One outcome per method that has succeeded soft prompts with scored held-out phrasings, on one split."""
    base = model.variants.get(kind=VariantKind.BASE)
    outcomes = []
    for method, softs in latest_soft_prompts(model, split_seed).items():
        revisions = heldout_unobserved_revisions(model, softs)
        outcome = _outcome(method, base, *_seeded(softs), revisions, samples)
        if outcome is not None:
            outcomes.append(outcome)
    return outcomes


def soft_prompt_outcome(soft, *, samples: int = metrics.BOOTSTRAP_SAMPLES) -> MethodOutcome | None:
    """One soft prompt against the base model on its own held-out unobserved phrasings (its page)."""
    if soft.variant_id is None:
        return None
    base = soft.model.variants.get(kind=VariantKind.BASE)
    revisions = heldout_unobserved_revisions(soft.model, [soft])
    return _outcome(soft.ablation, base, *_seeded([soft]), revisions, samples)


BATCH_CALIBRATION = "batch calibration"


def calibration_outcome(
    model: LanguageModel, *, split_seed: int | None = None, samples: int = metrics.BOOTSTRAP_SAMPLES
) -> MethodOutcome | None:
    """The calibrated variant against the base model on the held-out unobserved phrasings it calibrated. On
    another split than the app's (SOFTPROMPT_SPLIT_SEED), where the variant has no predictions, the same
    calibration is computed here from the base model's stored option scores (calibration needs no training, so
    a split only chooses which phrasings it is judged on)."""
    base = model.variants.filter(kind=VariantKind.BASE).first()
    if base is None:
        return None
    if app_seed(split_seed) != app_seed():
        return _calibration_on_split(model, base, app_seed(split_seed), samples)
    variant = model.variants.filter(kind=VariantKind.CALIBRATED).first()
    if variant is None:
        return None
    calibrated = variant.predictions.values_list(
        "revision_id", "revision__instruction__stable_key"
    ).distinct()
    # Held out under the split now: the variant calibrated the held-out phrasings of the split it last ran on.
    heldout = {r for r, stable_key in calibrated if is_heldout(stable_key)}
    return _outcome(
        BATCH_CALIBRATION, base, [variant], (), _unobserved(model, _phrasings_of(heldout)), samples
    )


def _calibration_on_split(
    model: LanguageModel, base: ModelVariant, split_seed: int, samples: int
) -> MethodOutcome | None:
    heldout = [
        r for r in approved_revisions(model=model) if is_heldout(r.instruction.stable_key, seed=split_seed)
    ]
    report, predictions = calibration.Calibration(), []
    for task, revisions in sorted(revisions_by_task(heldout).items(), key=lambda pair: pair[0].id):
        predictions += calibration.calibrated_predictions(base, task, revisions, report)
    revisions = _unobserved(model, _phrasings_of({p.revision_id for p in predictions}))
    correct = _correctness([base], revisions)
    key = "calibrated"  # not a variant id: these predictions are not stored
    correct.update({(key, p.revision_id, p.instance_id): p.correct for p in predictions})
    return _cells_outcome(BATCH_CALIBRATION, base.id, [key], (), revisions, correct, samples)


def _seeded(softs: list) -> tuple[list[ModelVariant], tuple[int, ...]]:
    return [soft.variant for soft in softs], tuple(soft.config.get("seed", 0) for soft in softs)


def _outcome(
    method: str,
    base: ModelVariant,
    variants: list[ModelVariant],
    seeds: tuple[int, ...],
    revisions: dict[int, str],
    samples: int,
) -> MethodOutcome | None:
    """The variants' (a method's seeds, or one unseeded variant) improvement over the base model."""
    correct = _correctness([base, *variants], revisions)
    return _cells_outcome(method, base.id, [v.id for v in variants], seeds, revisions, correct, samples)


def _cells_outcome(
    method: str,
    base,
    variants: list,
    seeds: tuple[int, ...],
    revisions: dict[int, str],
    correct: dict,
    samples: int,
) -> MethodOutcome | None:
    """The improvement over the base model from cells' correctness, keyed (variant key, revision, instance)."""
    matrices = _task_matrices(base, variants, revisions, correct)
    if not matrices:
        return None
    differences = {task: np.mean(runs, axis=0) - b for task, (b, runs) in matrices.items()}
    per_task, macro = paired_bootstrap.paired_improvement(differences, samples=samples)
    per_seed = {
        seed: float(np.mean([runs[s].mean() - b.mean() for b, runs in matrices.values()]))
        for s, seed in enumerate(seeds)
    }
    base_per_task = {task: float(b.mean()) for task, (b, _) in matrices.items()}
    base_accuracy = float(np.mean(list(base_per_task.values())))
    return MethodOutcome(method, seeds, base_accuracy, macro, per_task, per_seed, base_per_task)
