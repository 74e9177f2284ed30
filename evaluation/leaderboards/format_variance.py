"""Wording vs format on one model and task: the correctness array `correct[wording, format, instance]` read
from the stored cells, and its variance decomposition (the maths is evaluation/stats/variance.py).

The wordings are the task's approved phrasings that take a format (collection.formats.formattable) and have
every cell in every format: as written (the ordinary Prediction rows) and each declared format
(FormatPrediction, scored by a run over formats). A wording with a cell missing is left out rather than
estimated, so the array is fully crossed, as the estimators need; the page says how many were left out."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from django.core.cache import cache
from django.db.models import Count, Max

from collection import formats
from collection.models import InstructionRevision, Task
from collection.selectors import approved_phrasings, task_eval_sample_ids
from evaluation import split
from evaluation.leaderboards import colours
from evaluation.models import FormatPrediction, ModelVariant, Prediction, named_variants
from evaluation.stats.variance import VarianceDecomposition, decompose

# Fewer wordings than this and the wording component has too few degrees of freedom to say much.
MIN_WORDINGS = 3
# The key names every version the spread depends on; the expiry only bounds the cache's size.
CACHE_SECONDS = 24 * 3600


@dataclass(frozen=True)
class FormatSpread:
    task: Task
    wordings: int  # in the array
    left_out: int  # formattable wordings with a cell missing in some format
    fixed_layout: int  # approved phrasings whose text fixes their options' layout: not laid out in formats
    formats: tuple[str, ...]  # keys, as written first
    revisions: tuple[int, ...]  # the wordings' revision ids, in the array's order
    accuracy: np.ndarray  # (wordings, formats): each prompt's accuracy
    decomposition: VarianceDecomposition | None  # None below MIN_WORDINGS


def _phrasings(variant: ModelVariant, task: Task):
    """The task's approved phrasings the variant's model takes (its prompt format's), as scoring picks them
    (runs.scoring.approved_revisions): a phrasing written for another format is never scored on it, so it is
    neither a missing cell nor a fixed layout here."""
    return approved_phrasings(task, prompt_format=variant.model.prompt_format)


def correctness(variant: ModelVariant, task: Task) -> tuple[np.ndarray, int, list[int]]:
    """The crossed array (wordings, formats in formats.ALL order, instances), the number of formattable
    wordings left out for a missing cell, and the revision ids kept."""
    scores = split.scored_by(variant)
    revisions = [
        p.current_revision_id
        for p in _phrasings(variant, task)
        if formats.formattable(p.current_revision.template) and scores(p)
    ]
    sample = task_eval_sample_ids(task)
    column = {instance: i for i, instance in enumerate(sample)}
    keys = [f.key for f in formats.ALL]
    grid = np.full((len(revisions), len(keys), len(sample)), np.nan)
    row = {revision: i for i, revision in enumerate(revisions)}
    written = Prediction.objects.filter(variant=variant, revision_id__in=revisions, instance_id__in=sample)
    for revision, instance, correct in written.values_list("revision_id", "instance_id", "correct"):
        grid[row[revision], 0, column[instance]] = correct
    declared = FormatPrediction.objects.filter(
        variant=variant, revision_id__in=revisions, instance_id__in=sample, format_key__in=keys[1:]
    )
    for revision, key, instance, correct in declared.values_list(
        "revision_id", "format_key", "instance_id", "correct"
    ):
        grid[row[revision], keys.index(key), column[instance]] = correct
    complete = ~np.isnan(grid).any(axis=(1, 2))
    kept = [revision for revision, ok in zip(revisions, complete) if ok]
    return grid[complete], int((~complete).sum()), kept


def format_spread(variant: ModelVariant, task: Task, *, samples: int = 2000) -> FormatSpread:
    grid, left_out, kept = correctness(variant, task)
    fixed = sum(not formats.formattable(p.current_revision.template) for p in _phrasings(variant, task))
    enough = grid.shape[0] >= MIN_WORDINGS and grid.shape[2] > 1
    return FormatSpread(
        task=task,
        wordings=grid.shape[0],
        left_out=left_out,
        fixed_layout=fixed,
        formats=tuple(f.key for f in formats.ALL),
        revisions=tuple(kept),
        accuracy=grid.mean(axis=2) if grid.size else np.zeros((0, len(formats.ALL))),
        decomposition=decompose(grid, samples=samples, seed=task.id) if enough else None,
    )


def version(task) -> tuple:
    """Changes whenever a format cell of the task is stored (the as-written cells are in task_version)."""
    which = (
        {"revision__instruction__task": task}
        if isinstance(task, Task)
        else {
            "revision__instruction__task__benchmark__slug": task[0],
            "revision__instruction__task__slug": task[1],
        }
    )
    return tuple(FormatPrediction.objects.filter(**which).aggregate(Max("id"), Count("id")).values())


def variants_with_formats(task: Task) -> list[ModelVariant]:
    ids = FormatPrediction.objects.filter(revision__instruction__task=task).values("variant_id").distinct()
    return list(named_variants(ModelVariant.objects.filter(id__in=ids), "").order_by("model__name", "id"))


def cached_spread(variant: ModelVariant, task: Task, *, samples: int = 1000) -> FormatSpread:
    """format_spread, cached until a cell of the variant on the task (as written or in a format) changes."""
    written = Prediction.objects.filter(variant=variant, revision__instruction__task=task).aggregate(
        Max("id"), Count("id")
    )
    state = repr((variant.id, task.id, samples, version(task), tuple(written.values())))
    key = "format-spread:" + hashlib.sha256(state.encode()).hexdigest()
    spread = cache.get(key)
    if spread is None:
        spread = format_spread(variant, task, samples=samples)
        cache.set(key, spread, CACHE_SECONDS)
    return spread


def as_dict(variant: ModelVariant, spread: FormatSpread) -> dict:
    """The decomposition for the API: shares of the prompt-level variance with their intervals."""
    d = spread.decomposition
    return {
        "variant": str(variant),
        "variant_id": variant.id,
        "wordings": spread.wordings,
        "wordings_left_out": spread.left_out,
        "formats": [
            {"key": key, "label": formats.BY_KEY[key].label, "mean_accuracy": _rounded(mean)}
            for key, mean in zip(
                spread.formats, spread.accuracy.mean(axis=0) if spread.wordings else [None] * 7
            )
        ],
        "instances": d.shape[2] if d else None,
        "std": _rounded(d.observed_variance**0.5) if d else None,
        "noise_std": _rounded(d.noise**0.5) if d else None,
        "shares": {
            name: {
                "share": _rounded(d.shares.get(name)),
                "ci": [_rounded(v) for v in d.intervals[f"{name}_share"]]
                if d.intervals.get(f"{name}_share")
                else None,
            }
            for name in ("wording", "format", "interaction")
        }
        if d
        else None,
    }


def _rounded(value) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 6)


def page(variant: ModelVariant, spread: FormatSpread) -> dict:
    """What templates/evaluation/_format_spread.html shows of a spread: share bars and the prompt grid."""
    d = spread.decomposition
    bars = []
    for name in ("wording", "format", "interaction") if d else ():
        share, ci = d.shares.get(name), d.intervals.get(f"{name}_share")
        if share is None:
            continue
        bar = {"name": name, "width": round(100 * share, 1), "text": f"{100 * share:.0f}%", "ci": ci}
        component, bounds = d.components.get(name), d.intervals.get(name)
        if component is not None:
            bar["sd"] = f"{100 * component**0.5:.1f} pp"
            if bounds is not None:
                bar["sd_ci"] = f"[{100 * bounds[0] ** 0.5:.1f}, {100 * bounds[1] ** 0.5:.1f}]"
        if ci:
            bar |= {
                "low": round(100 * ci[0], 1),
                "span": round(100 * (ci[1] - ci[0]), 1),
                "ci_text": f"[{100 * ci[0]:.0f}, {100 * ci[1]:.0f}]",
            }
        bars.append(bar)
    revisions = InstructionRevision.objects.in_bulk(spread.revisions)
    rows = [
        {
            "instruction_id": revisions[revision].instruction_id,
            "template": revisions[revision].template,
            "cells": [_cell(value) for value in spread.accuracy[i]],
            "mean": float(spread.accuracy[i].mean()),
        }
        for i, revision in enumerate(spread.revisions)
    ]
    return {
        "variant": variant,
        "spread": spread,
        "std": d.observed_variance**0.5 if d else None,
        # The three components together below the noise: the shares split little and move a lot.
        "mostly_noise": bool(d) and sum(v or 0 for v in d.components.values()) < d.noise,
        "noise": d.noise**0.5 if d else None,
        "bars": bars,
        # One per component in order, None where it has no share: the model page's three columns.
        "share_cells": [
            next((b for b in bars if b["name"] == name), None)
            for name in ("wording", "format", "interaction")
        ],
        "rows": rows,
        "columns": [formats.BY_KEY[key] for key in spread.formats],
        "format_means": list(spread.accuracy.mean(axis=0)) if rows else [],
    }


def _cell(value: float) -> dict:
    return {"text": f"{100 * value:.0f}", "bg": colours.heat(value), "fg": colours.heat_text(value)}


def model_spreads(variant: ModelVariant) -> list[dict]:
    """Every task the variant has scored in the declared formats, with its spread, for the model's page."""
    tasks = Task.objects.filter(
        id__in=FormatPrediction.objects.filter(variant=variant).values("revision__instruction__task_id")
    ).select_related("benchmark")
    return [
        page(variant, cached_spread(variant, task)) | {"task": task}
        for task in tasks.order_by("benchmark__slug", "slug")
    ]
