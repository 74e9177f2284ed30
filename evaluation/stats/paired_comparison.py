"""Paired comparison of two model variants on the same cells, as pure functions (numpy, no Django).

For every figure (AvgP, Std, Q10, Gap, ...) the difference A − B with a 95% interval from a paired bootstrap:
both variants get the same phrasing and instance draws in every replicate (the same seed and the same
shapes make metrics.replicate_figures draw the same rows and instance weights), so what the two share, hard
instances and bad phrasings, cancels in the difference. Per task, and over the benchmark as the macro
average of the tasks, replicate by replicate, as the leaderboard averages them.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from evaluation.stats import figure_registry, metrics


def names() -> tuple[str, ...]:
    """The figures a comparison reports: the tables' columns (figure_registry.columns)."""
    return tuple(figure.name for figure in figure_registry.columns())


@dataclass(frozen=True)
class Difference:
    a: float | None
    b: float | None
    difference: float | None  # a - b
    ci: tuple[float, float] | None

    @property
    def excludes_zero(self) -> bool:
        return self.ci is not None and (self.ci[0] > 0 or self.ci[1] < 0)

    def as_dict(self) -> dict:
        return {
            "a": self.a,
            "b": self.b,
            "difference": self.difference,
            "ci": list(self.ci) if self.ci else None,
            "excludes_zero": self.excludes_zero,
        }


def _point(data: metrics.TaskData, min_phrasings: int) -> dict:
    correct = np.asarray(data.correct, dtype=bool) if data.correct is not None else None
    return metrics.point_figures(
        correct,
        data.accuracy_vector(),
        np.asarray(data.observed, dtype=bool),
        data.unobserved(),
        min_phrasings,
        **data.instance_inputs(),
    )


def _replicates(data: metrics.TaskData, samples: int, seed: int, min_phrasings: int) -> dict[str, np.ndarray]:
    correct = np.asarray(data.correct, dtype=bool) if data.correct is not None else None
    return metrics.replicate_figures(
        np.random.default_rng(seed),
        samples,
        np.asarray(data.observed, dtype=bool),
        correct,
        data.accuracy_vector(),
        unobserved=data.unobserved(),
        min_phrasings=min_phrasings,
        **data.instance_inputs(),
    )


def _mean_where_defined(points: list[dict], name: str, both: list[int]) -> float | None:
    """The figure's macro average over the tasks where both variants have it, or, where there are none, over
    the tasks where this variant has it (None if it has it nowhere)."""
    tasks = both or [i for i, point in enumerate(points) if point[name] is not None]
    return float(np.mean([points[i][name] for i in tasks])) if tasks else None


def _differences(point_a: dict, point_b: dict, diff_reps: dict[str, np.ndarray], samples: int) -> dict:
    out = {}
    for name in names():
        a, b = point_a.get(name), point_b.get(name)
        difference = a - b if a is not None and b is not None else None
        values = diff_reps[name][~np.isnan(diff_reps[name])]
        ci = None
        if difference is not None and values.size >= samples // 2:
            ci = (float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5)))
        out[name] = Difference(a, b, difference, ci)
    return out


def _paired_form(a: metrics.TaskData, b: metrics.TaskData) -> tuple[metrics.TaskData, metrics.TaskData]:
    """Both with correctness matrices (two-way bootstrap), or both as accuracies (phrasings only) when
    either has no per-instance data (published results)."""
    if a.correct is not None and b.correct is not None:
        if np.shape(a.correct) != np.shape(b.correct):
            raise ValueError("Both variants need the same phrasings and instances.")
        return a, b
    if len(a.observed) != len(b.observed):
        raise ValueError("Both variants need the same phrasings.")

    def as_accuracies(d: metrics.TaskData) -> metrics.TaskData:
        return metrics.TaskData(d.observed, accuracies=list(d.accuracy_vector()), defaults=d.defaults)

    return as_accuracies(a), as_accuracies(b)


@dataclass(frozen=True)
class Comparison:
    overall: dict[str, Difference]
    per_task: list[dict[str, Difference]]
    ci_method: str


def compare(
    pairs: Sequence[tuple[metrics.TaskData, metrics.TaskData]],
    *,
    samples: int = metrics.BOOTSTRAP_SAMPLES,
    seed: int = metrics.SEED,
    min_phrasings: int = metrics.MIN_PHRASINGS,
) -> Comparison:
    """A − B per figure, per task and as the macro average over the tasks, with paired 95% intervals.
    Each pair is one task's data for A and for B on the same cells (rows and columns in the same order)."""
    if not pairs:
        raise ValueError("No shared tasks to compare on.")
    per_task, points_a, points_b, diff_rows = [], [], [], []
    methods = set()
    for index, (a, b) in enumerate(pairs):
        a, b = _paired_form(a, b)
        methods.add("instances and phrasings" if a.correct is not None else "phrasings only")
        point_a, point_b = _point(a, min_phrasings), _point(b, min_phrasings)
        reps_a = _replicates(a, samples, seed + index, min_phrasings)
        reps_b = _replicates(b, samples, seed + index, min_phrasings)
        diff = {name: reps_a[name] - reps_b[name] for name in names()}
        per_task.append(_differences(point_a, point_b, diff, samples))
        points_a.append(point_a)
        points_b.append(point_b)
        diff_rows.append(diff)
    # Each figure is macro-averaged over the tasks where both variants have it (one may have observed
    # phrasings on a task where the other has none), so its difference and its interval cover the same tasks.
    # A figure no task has for both (a model tuned on none of the collections has no Observed or Gap) has no
    # difference; each model's own value is shown, over the tasks where it has it, rather than none at all
    # (which read as if neither model had it).
    macro_a, macro_b, macro_diff, unpaired = {}, {}, {}, set()
    for name in names():
        both = [
            i for i in range(len(pairs)) if points_a[i][name] is not None and points_b[i][name] is not None
        ]
        if not both:
            unpaired.add(name)
        macro_a[name] = _mean_where_defined(points_a, name, both)
        macro_b[name] = _mean_where_defined(points_b, name, both)
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a replicate where no task defines the figure
            macro_diff[name] = (
                np.nanmean(np.stack([diff_rows[i][name] for i in both]), axis=0)
                if both
                else np.full(samples, np.nan)
            )
    overall = _differences(macro_a, macro_b, macro_diff, samples)
    for name in unpaired:  # each side's value is over other tasks than the other's: no difference
        overall[name] = Difference(overall[name].a, overall[name].b, None, None)
    return Comparison(
        overall=overall,
        per_task=per_task,
        ci_method=" + ".join(sorted(methods)),
    )
