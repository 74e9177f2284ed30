"""The most fragile instances of a task for one model variant: those whose answer moves most with the wording.

An instance is ranked by its flip rate (ProSA's per-instance PromptSensiScore on correctness: the share of
pairs of phrasings that differ in whether they get it right), then by its POSIX (how far the answers'
log-likelihoods move between phrasings, in nats per token), from the same inputs as the figures
(aggregates.task_data_keyed: the complete phrasings on the task's evaluation sample) and the same per-instance
arithmetic (metrics.instance_sensitivity). Definitions: docs/sensitivity.md.

Only approved phrasings are listed (a phrasing retired since the last refresh leaves the list at once, as it
leaves every public page), and only instances on which the phrasings do not all give the same answer.
Published results have no per-instance data: they have no list.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass

import numpy as np
from django.core.cache import cache

from collection import templating
from collection.answers import option_texts
from collection.models import Instance, Instruction, Task
from evaluation.leaderboards import aggregates, selectors
from evaluation.models import ModelVariant, Prediction, VariantKind
from evaluation.stats import metrics

TOP = 10  # instances listed by default
MAX_TOP = 50
SNIPPET_CHARS = 160
CACHE_SECONDS = 3600  # keyed on the task's data version, so a refresh makes a new key


@dataclass(frozen=True)
class Answer:
    """One phrasing's prediction on the instance."""

    instruction_id: int
    revision_id: int
    collection: str
    predicted: int  # the option's index (stable per instance, whatever the phrasing calls it)
    option: str  # the option's text
    answer: str  # the option as this phrasing asks for it (a letter, a label word or the text)
    correct: bool


@dataclass(frozen=True)
class FragileInstance:
    instance_id: int
    source_id: str
    snippet: str  # the instance's inputs, shortened
    gold: int
    gold_option: str
    flip_rate: float  # ProSA's PSS on this instance: share of pairs of phrasings differing in correctness
    consistency_rate: float | None  # SCORE: share of pairs of phrasings predicting the same option
    posix: float | None  # POSIX's psi: nats per token; None without log-likelihoods
    right: int  # phrasings that get it right
    answers: tuple[Answer, ...]

    def as_dict(self) -> dict:
        return asdict(self) | {"answers": [asdict(a) for a in self.answers]}


@dataclass(frozen=True)
class FragileList:
    """A variant's most fragile instances on a task, or why there is no list (`note`)."""

    variant_id: int
    phrasings: int  # the approved complete phrasings compared
    instances: int  # the evaluation sample's instances
    items: tuple[FragileInstance, ...]
    note: str = ""

    def as_dict(self) -> dict:
        return {
            "variant_id": self.variant_id,
            "phrasings": self.phrasings,
            "instances": self.instances,
            "note": self.note,
            "instances_listed": [item.as_dict() for item in self.items],
        }


def scored_variants(task: Task) -> list[ModelVariant]:
    """The variants with predictions on the task (a fragile list each): those with figures on it, published
    ones left out."""
    return [v for v in selectors.task_variants(task) if v.kind != VariantKind.IMPORTED]


def fragile_instances(
    variant: ModelVariant, task: Task, *, top: int = TOP, version: tuple | None = None
) -> FragileList:
    """The `top` most fragile instances of the task for the variant (cached per data version: the task's
    results and summaries, selectors.task_version)."""
    top = max(1, min(int(top), MAX_TOP))
    version = selectors.task_version(task) if version is None else version
    # Approved phrasings only, as of now: one retired since the last refresh of the figures (which changes
    # the version) leaves the list at once, so the key names them.
    approved = frozenset(
        Instruction.objects.filter(task=task, status=Instruction.Status.APPROVED).values_list(
            "current_revision_id", flat=True
        )
    )
    parts = ["fragile", variant.id, task.id, top, version, sorted(r for r in approved if r is not None)]
    key = "fragile:" + hashlib.sha256(repr(parts).encode()).hexdigest()
    found = cache.get(key)
    if found is None:
        found = _build(variant, task, top, approved)
        cache.set(key, found, timeout=CACHE_SECONDS)
    return found


def _build(variant: ModelVariant, task: Task, top: int, approved: frozenset) -> FragileList:
    if variant.kind == VariantKind.IMPORTED:
        return FragileList(variant.id, 0, 0, (), "Published results have no per-instance data.")
    keyed = aggregates.task_data_keyed(variant, task)
    if keyed is None:
        return FragileList(variant.id, 0, 0, (), "No phrasing is scored on every instance of the sample yet.")
    keep = np.array([r.revision_id in approved for r in keyed.results], dtype=bool)
    results = [r for r, kept in zip(keyed.results, keep, strict=True) if kept]
    samples = len(keyed.sample)
    if len(results) < 2 or samples == 0:
        return FragileList(
            variant.id, len(results), samples, (), "Needs two phrasings scored on every instance to compare."
        )
    data = keyed.data.rows(keep)
    values = metrics.instance_sensitivity(data.correct, data.predicted, data.posix_terms)
    flips, rates, posix = values["flip_rate"], values["consistency_rate"], values["posix"]
    order = _ranked(flips, rates, posix)[:top]
    instances = Instance.objects.in_bulk([keyed.sample[x] for x in order])
    items = tuple(
        _item(task, instances[keyed.sample[x]], x, data, results, flips, rates, posix) for x in order
    )
    note = "" if items else "Every phrasing gives the same answer on every instance."
    return FragileList(variant.id, len(results), samples, items, note)


def _ranked(flips: np.ndarray, rates: np.ndarray | None, posix: np.ndarray | None) -> list[int]:
    """Instance positions, most fragile first: flip rate, then POSIX (descending), then the consistency
    rate (ascending); instances on which every phrasing gives the same option (or, without predicted options,
    the same correctness) are left out."""
    n = flips.shape[0]
    moving = rates < 1 - 1e-12 if rates is not None else flips > 0
    by_posix = posix if posix is not None else np.zeros(n)
    by_rate = rates if rates is not None else np.ones(n)
    # np.lexsort sorts by the last key first.
    order = np.lexsort((np.arange(n), by_rate, -by_posix, -flips))
    return [int(x) for x in order if moving[x]]


def _item(task, instance, x, data, results, flips, rates, posix) -> FragileInstance:
    options = list(instance.options or [])
    answers = []
    for k, result in enumerate(results):
        chosen = int(data.predicted[k, x]) if data.predicted is not None else -1
        revision = result.revision
        try:
            said = option_texts(task, revision, instance)
        except (IndexError, KeyError, TypeError):
            said = ()
        answers.append(
            Answer(
                instruction_id=revision.instruction_id,
                revision_id=revision.id,
                collection=revision.instruction.collection.name,
                predicted=chosen,
                option=str(options[chosen]) if 0 <= chosen < len(options) else "",
                answer=str(said[chosen]) if 0 <= chosen < len(said) else "",
                correct=bool(data.correct[k, x]),
            )
        )
    return FragileInstance(
        instance_id=instance.id,
        source_id=instance.source_id,
        snippet=snippet(instance.inputs),
        gold=instance.gold,
        gold_option=str(options[instance.gold]) if instance.gold < len(options) else "",
        flip_rate=float(flips[x]),
        consistency_rate=_number(rates, x),
        posix=_number(posix, x),
        right=int(np.asarray(data.correct)[:, x].sum()),
        answers=tuple(answers),
    )


def _number(values: np.ndarray | None, x: int) -> float | None:
    if values is None or not math.isfinite(values[x]):
        return None
    return float(values[x])


def snippet(inputs) -> str:
    """An instance's inputs on one line, shortened to SNIPPET_CHARS."""
    if isinstance(inputs, dict):
        text = " · ".join(f"{name}: {value}" for name, value in inputs.items())
    else:
        text = str(inputs)
    text = " ".join(text.split())
    return text if len(text) <= SNIPPET_CHARS else text[: SNIPPET_CHARS - 1].rstrip() + "…"


# --- One instance under every phrasing --------------------------------------------------------------------


@dataclass(frozen=True)
class OptionScore:
    answer: str  # as the phrasing asks for it
    option: str  # the option's text
    loglik: float | None  # summed log-likelihood of its tokens under the phrasing
    length: int | None  # its length in tokens
    predicted: bool
    gold: bool


@dataclass(frozen=True)
class PhrasingAnswer:
    instruction: Instruction
    prompt: str  # the phrasing rendered on the instance (before the model's wrapper)
    predicted: int
    correct: bool
    options: tuple[OptionScore, ...]


def instance_answers(variant: ModelVariant, task: Task, instance: Instance) -> list[PhrasingAnswer]:
    """The variant's prediction on the instance under each approved phrasing of the task that has one, with
    each option's log-likelihood: what the fragile list's figures are computed from."""
    phrasings = {
        i.current_revision_id: i
        for i in Instruction.objects.filter(task=task, status=Instruction.Status.APPROVED)
        .exclude(current_revision=None)
        .select_related("current_revision", "collection")
    }
    predictions = Prediction.objects.filter(variant=variant, instance=instance, revision_id__in=phrasings)
    rows = []
    for prediction in predictions.order_by("revision_id"):
        instruction = phrasings[prediction.revision_id]
        revision = instruction.current_revision
        try:
            prompt = templating.render(revision.template, instance.inputs, instance.options)
        except templating.TemplateError as exc:
            prompt = f"(cannot render: {exc})"
        try:
            said = option_texts(task, revision, instance)
        except (IndexError, KeyError, TypeError):
            said = ()
        options = list(instance.options or [])
        logliks = prediction.logliks if isinstance(prediction.logliks, list) else []
        lengths = prediction.lengths if isinstance(prediction.lengths, list) else []
        scores = tuple(
            OptionScore(
                answer=str(said[o]) if o < len(said) else "",
                option=str(options[o]) if o < len(options) else "",
                loglik=_float(logliks[o]) if o < len(logliks) else None,
                length=int(lengths[o]) if o < len(lengths) and isinstance(lengths[o], int) else None,
                predicted=o == prediction.predicted,
                gold=o == instance.gold,
            )
            for o in range(max(len(options), len(logliks)))
        )
        rows.append(PhrasingAnswer(instruction, prompt, prediction.predicted, prediction.correct, scores))
    rows.sort(key=lambda row: (row.instruction.collection.name, row.instruction.id))
    return rows


def _float(value) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None
