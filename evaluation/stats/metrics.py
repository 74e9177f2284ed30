"""Robustness metrics across phrasings, as pure functions (numpy, no Django). Each figure's definition and
formula is declared once in evaluation/stats/figure_registry.py; this module feeds the formulas the measured
accuracies (point values) and the bootstrap's replicates, and summarises them with intervals.

Inputs are a correctness matrix `correct[k, x]` (phrasing k got instance x right) when per-instance
predictions exist, or only the per-phrasing accuracies when results were imported from a publication. Beside
a correctness matrix, the predicted options `predicted[k, x]` feed the Consistency rate and POSIX's pair terms
`posix_terms[i, j, x]` (figure_registry.pair_terms) feed POSIX (docs/sensitivity.md).
All figures are fractions in [0, 1] (POSIX: nats per token); pages show them as percentages and the gap in
percentage points.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from evaluation.stats import figure_registry
from evaluation.stats.figure_registry import Draws

SEED = 20240507  # fixed: the same data always gives the same intervals
BOOTSTRAP_SAMPLES = 1000


def phrasing_accuracy(correct: np.ndarray) -> np.ndarray:
    """Per-phrasing accuracy A_p over the instances (rows are phrasings)."""
    return np.asarray(correct, dtype=float).mean(axis=1)


def wilson_interval(correct, total, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a binomial proportion, vectorised (the closed form scipy's
    binomtest(...).proportion_ci(method="wilson") returns, without the test's p-value search, which costs
    a millisecond per phrasing on a page listing a hundred models)."""
    from scipy.stats import norm

    k, n = np.asarray(correct, dtype=float), np.asarray(total, dtype=float)
    z = norm.ppf(0.5 + confidence / 2)
    p = k / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    return np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)


def spread_figures(accuracies: Sequence[float]) -> dict[str, float]:
    """The figures of per-phrasing accuracies alone (AvgP, Std, Min, the quantiles, MaxP, Spread, CPS: the
    registry's figures that need nothing else), whatever the number of phrasings."""
    draws = Draws.point(accuracies)
    return figure_registry.point(figure_registry.compute(draws, needs=("accuracies",)))


def consistency(correct: np.ndarray) -> float | None:
    """1 - mean_x 2 a_x (1 - a_x) K / (K - 1), a_x = share of the K phrasings right on instance x.

    2 a (1 - a) K / (K - 1) is the chance that two different phrasings disagree on x (ProSA's sensitivity);
    1 means every phrasing agrees on every instance. Undefined (None) with fewer than two phrasings."""
    c = np.asarray(correct, dtype=float)
    draws = Draws.point(np.zeros(c.shape[0]), correct=c)
    return figure_registry.point(figure_registry.compute(draws, needs=("instances",)))["consistency"]


def unobserved_mask(observed: Sequence[bool], defaults: Sequence[bool] | None = None) -> np.ndarray:
    """Unobserved = neither observed nor a benchmark default: the study counts the benchmark's own prompt
    in neither set (it is not an instruction-tuning phrasing and not a human-written one)."""
    mask = ~np.asarray(observed, dtype=bool)
    return mask if defaults is None else mask & ~np.asarray(defaults, dtype=bool)


def observed_figures(
    accuracies: Sequence[float], observed: Sequence[bool], unobserved: Sequence[bool] | None = None
) -> dict[str, float | None]:
    """Observed AvgP, Unobserved AvgP, Gap = observed - unobserved, PDR = 1 - unobserved / observed.
    `unobserved` defaults to "not observed" (see unobserved_mask for benchmark defaults)."""
    mask = np.asarray(observed, dtype=bool)
    other = unobserved_mask(mask) if unobserved is None else np.asarray(unobserved, dtype=bool)
    draws = Draws.point(accuracies, mask, other)
    return figure_registry.point(figure_registry.compute(draws, needs=("observed",)))


@dataclass(frozen=True)
class Summary:
    """Every figure for one model variant on one task over one set of phrasings (`summary.avgp` reads a
    figure)."""

    phrasings: int
    instances: int | None  # None for imported results (no per-instance data)
    figures: dict[str, float | None]  # every figure of the registry by name, None where undefined
    ci: dict[str, tuple[float, float]]  # figure -> 95% interval
    ci_method: str  # "instances and phrasings" or "phrasings only"

    def __getattr__(self, name: str):
        figures = self.__dict__.get("figures", {})
        if name in figures:
            return figures[name]
        raise AttributeError(name)

    def as_dict(self) -> dict:
        """What a TaskSummary stores: the counts, every figure under its name, the intervals, the method."""
        return {
            "phrasings": self.phrasings,
            "instances": self.instances,
            **self.figures,
            "ci": dict(self.ci),
            "ci_method": self.ci_method,
        }


# The fewest phrasings on a task for its spread figures (figure_registry.Figure.spread); the app's is the
# SPREAD_MIN_PHRASINGS setting.
MIN_PHRASINGS = 3


def point_figures(
    correct: np.ndarray | None,
    accuracies: np.ndarray,
    observed: np.ndarray,
    unobserved: np.ndarray | None = None,
    min_phrasings: int = MIN_PHRASINGS,
    *,
    predicted: np.ndarray | None = None,
    posix_terms: np.ndarray | None = None,
) -> dict[str, float | None]:
    """Every figure of the measured accuracies, None where undefined (the spread figures too with fewer than
    `min_phrasings` phrasings); Consistency from the correctness matrix, the Consistency rate from the
    predicted options and POSIX from its pair terms, when there are."""
    mask = np.asarray(observed, dtype=bool)
    other = unobserved_mask(mask) if unobserved is None else np.asarray(unobserved, dtype=bool)
    predicted, posix_terms = _instance_inputs(correct, predicted, posix_terms)
    draws = Draws.point(accuracies, mask, other, correct, predicted, posix_terms)
    return figure_registry.point(figure_registry.compute(draws, min_phrasings=min_phrasings))


def _instance_inputs(correct, predicted, posix_terms) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The predicted options and POSIX's pair terms, checked against the correctness matrix's (K, N): they
    describe the same cells, and without a correctness matrix there are no cells to describe."""
    if correct is None:
        if predicted is not None or posix_terms is not None:
            raise ValueError("Predicted options and log-likelihood terms need a correctness matrix.")
        return None, None
    k, n = np.shape(correct)
    if predicted is not None:
        predicted = np.asarray(predicted, dtype=int)
        if predicted.shape != (k, n):
            raise ValueError(f"Predicted options are {predicted.shape}; the correctness matrix is {(k, n)}.")
    if posix_terms is not None:
        posix_terms = np.asarray(posix_terms, dtype=float)
        if posix_terms.shape != (k, k, n):
            raise ValueError(f"POSIX's pair terms are {posix_terms.shape}; expected {(k, k, n)}.")
    return predicted, posix_terms


def instance_sensitivity(
    correct: np.ndarray, predicted: np.ndarray | None = None, posix_terms: np.ndarray | None = None
) -> dict[str, np.ndarray | None]:
    """Each instance's sensitivity to the phrasing, (N,) each, None without its data or with fewer than two
    phrasings: `flip_rate` (ProSA's per-instance PSS on correctness), `consistency_rate` (SCORE's share of
    pairs of phrasings predicting the same option) and `posix` (POSIX's psi). The per-instance values the
    figures Consistency (1 - mean flip rate), Consistency rate and POSIX average."""
    c = np.asarray(correct, dtype=bool)
    predicted, posix_terms = _instance_inputs(c, predicted, posix_terms)
    draws = Draws.point(np.zeros(c.shape[0]), correct=c, predicted=predicted, posix_terms=posix_terms)
    out = {}
    for name, per_instance in (
        ("flip_rate", figure_registry.instance_flip_rate),
        ("consistency_rate", figure_registry.instance_consistency_rate),
        ("posix", figure_registry.instance_posix),
    ):
        values = per_instance(draws)
        out[name] = None if values is None else values[0]
    return out


def two_way_draws(
    rng: np.random.Generator, samples: int, k: int, n: int | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """A two-way bootstrap's draws: per replicate, K phrasing indices with replacement, (B, K), and, with `n`,
    N instances with replacement as multinomial counts, (B, N). Every interval in the app draws here, so the
    same seed and shapes give the same draws: that is what pairs two variants' replicates."""
    rows = rng.integers(0, k, size=(samples, k))
    if n is None:
        return rows, None
    return rows, rng.multinomial(n, np.full(n, 1 / n), size=samples).astype(float)


def drawn_row_means(matrix: np.ndarray, rows: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Each drawn phrasing's mean over the drawn instances, (B, K), for a (K, N) matrix (correctness, or a
    per-cell difference). Drawing instances is weighting them by their counts: one matrix product."""
    per_row = (np.asarray(matrix, dtype=float) @ counts.T) / counts.shape[1]  # (K, B)
    return per_row[rows, np.arange(rows.shape[0])[:, None]]


# The most (replicate x phrasing x instance) values drawn_pair_sums holds at once (8 bytes each).
PAIR_CHUNK_VALUES = 4_000_000


def drawn_pair_sums(terms: np.ndarray, row_counts: np.ndarray) -> np.ndarray:
    """(B, N): for per-pair terms `terms[i, j, x]` (zero where i = j), each replicate's sum over the ordered
    pairs of its phrasing slots, sum_ij w_i w_j terms[i, j, x] with w the times each phrasing was drawn:
    pairs of slots holding the same phrasing add nothing. In chunks of replicates, to bound memory."""
    k, _, n = terms.shape
    samples = row_counts.shape[0]
    out = np.empty((samples, n))
    by_j = np.ascontiguousarray(terms.transpose(1, 0, 2)).reshape(k, k * n)  # [j, (i, x)]
    step = max(1, PAIR_CHUNK_VALUES // max(1, k * n))
    for start in range(0, samples, step):
        w = row_counts[start : start + step]
        inner = (w @ by_j).reshape(w.shape[0], k, n)  # sum over j of w_j terms[i, j, x]: one BLAS product
        out[start : start + step] = np.einsum("bi,bix->bx", w, inner)
    return out


def replicate_figures(
    rng: np.random.Generator,
    samples: int,
    observed: np.ndarray,
    correct: np.ndarray | None = None,
    accuracies: np.ndarray | None = None,
    *,
    unobserved: np.ndarray | None = None,
    min_phrasings: int = MIN_PHRASINGS,
    predicted: np.ndarray | None = None,
    posix_terms: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Every figure on `samples` bootstrap replicates at once (NaN where a figure is undefined, the spread
    figures included when there are fewer than `min_phrasings` phrasings, as in point_figures).

    Two-way when a correctness matrix is given: a replicate draws K phrasings and N instances with
    replacement. Drawing instances is the same as weighting them by multinomial counts, so all replicates'
    accuracies come out of one matrix product instead of a Python loop. The pair figures (Consistency, the
    Consistency rate, POSIX) take the same draws, over the pairs of slots holding different phrasings
    (figure_registry's "Pair figures"); they draw nothing more, so the other figures' replicates are the
    same with or without predicted options and log-likelihoods."""
    observed = np.asarray(observed, dtype=bool)
    k = observed.size
    agreement = counts = impurity = posix_sum = pairs = None
    predicted, posix_terms = _instance_inputs(correct, predicted, posix_terms)
    if correct is not None:
        c = np.asarray(correct, dtype=float)
        rows, counts = two_way_draws(rng, samples, k, c.shape[1])
        acc = drawn_row_means(c, rows, counts)
        # a_x under each replicate's phrasing draw: each phrasing's row counted as often as it was drawn.
        row_counts = np.zeros((samples, k))
        np.add.at(row_counts, (np.arange(samples)[:, None], rows), 1)
        agreement = (row_counts @ c) / k
        pairs = k * k - (row_counts**2).sum(axis=1)
        if predicted is not None:
            impurity = figure_registry.option_impurity(row_counts, predicted)
        if posix_terms is not None:
            posix_sum = drawn_pair_sums(posix_terms, row_counts)
    else:
        rows, _ = two_way_draws(rng, samples, k)
        acc = np.asarray(accuracies, dtype=float)[rows]
    others = unobserved_mask(observed) if unobserved is None else np.asarray(unobserved, dtype=bool)
    draws = Draws(
        acc,
        observed[rows],
        others[rows],
        agreement,
        counts,
        option_impurity=impurity,
        posix_sum=posix_sum,
        distinct_pairs=pairs,
    )
    return figure_registry.compute(draws, min_phrasings=min_phrasings)


def _intervals(point: dict[str, float | None], replicates: dict[str, np.ndarray], samples: int) -> dict:
    ci = {}
    for name, value in point.items():
        values = replicates[name][~np.isnan(replicates[name])]
        # A figure missing from most replicates (e.g. no observed phrasing drawn) gets no interval.
        if value is not None and values.size >= samples // 2:
            ci[name] = (float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5)))
    return ci


def summarise(
    *,
    correct: np.ndarray | None = None,
    accuracies: Sequence[float] | None = None,
    observed: Sequence[bool],
    unobserved: Sequence[bool] | None = None,
    samples: int = BOOTSTRAP_SAMPLES,
    seed: int = SEED,
    min_phrasings: int = MIN_PHRASINGS,
    predicted: np.ndarray | None = None,
    posix_terms: np.ndarray | None = None,
) -> Summary:
    """All figures with 95% bootstrap intervals.

    With a correctness matrix the bootstrap is two-way: each replicate resamples phrasings and instances
    with replacement, so the interval reflects both which phrasings were written and which instances were
    drawn. With accuracies only (imported results) it resamples phrasings only. The predicted options and
    POSIX's pair terms (with a correctness matrix only) give the Consistency rate and POSIX."""
    observed_mask = np.asarray(observed, dtype=bool)
    if correct is not None:
        correct = np.asarray(correct, dtype=bool)
        acc = phrasing_accuracy(correct)
    else:
        acc = np.asarray(accuracies, dtype=float)
    if acc.size == 0:
        raise ValueError("No phrasings to summarise.")
    unobserved_rows = (
        unobserved_mask(observed_mask) if unobserved is None else np.asarray(unobserved, dtype=bool)
    )
    instance_inputs = {"predicted": predicted, "posix_terms": posix_terms}
    point = point_figures(correct, acc, observed_mask, unobserved_rows, min_phrasings, **instance_inputs)
    replicates = replicate_figures(
        np.random.default_rng(seed),
        samples,
        observed_mask,
        correct,
        acc,
        unobserved=unobserved_rows,
        min_phrasings=min_phrasings,
        **instance_inputs,
    )
    return Summary(
        phrasings=int(acc.size),
        instances=int(correct.shape[1]) if correct is not None else None,
        figures=point,
        ci=_intervals(point, replicates, samples),
        ci_method="instances and phrasings" if correct is not None else "phrasings only",
    )


def macro_average(
    per_task: Sequence[dict[str, float | None]], names: Sequence[str]
) -> dict[str, float | None]:
    """Benchmark figures: the plain mean over tasks of each per-task figure (a benchmark's Std is the mean
    of its tasks' Stds). Tasks where a figure is undefined are left out of that figure's mean."""
    out: dict[str, float | None] = {}
    for name in names:
        values = [row[name] for row in per_task if row.get(name) is not None]
        out[name] = float(np.mean(values)) if values else None
    return out


@dataclass(frozen=True)
class TaskData:
    """One task's results for one model variant: a correctness matrix, or accuracies when imported."""

    observed: Sequence[bool]
    correct: np.ndarray | None = None
    accuracies: Sequence[float] | None = None
    heldout: Sequence[bool] | None = None  # held out from soft-prompt training (evaluation/split.py)
    defaults: Sequence[bool] | None = None  # the benchmark's own prompt: neither observed nor unobserved
    # Beside a correctness matrix: the option each phrasing predicted on each instance, (K, N), and POSIX's
    # pair terms (figure_registry.pair_terms), (K, K, N); None where not known (POSIX: no log-likelihoods).
    predicted: np.ndarray | None = None
    posix_terms: np.ndarray | None = None

    def instance_inputs(self) -> dict:
        """The keyword arguments that give point_figures, replicate_figures and summarise the Consistency
        rate and POSIX."""
        if self.correct is None:
            return {}
        return {"predicted": self.predicted, "posix_terms": self.posix_terms}

    def rows(self, keep) -> TaskData:
        """The task's data on the phrasings `keep` selects (a boolean mask or indices), every per-phrasing
        input kept in step."""
        keep = np.asarray(keep)

        def pick(values):
            return None if values is None else list(np.asarray(values)[keep])

        if self.correct is None:
            return TaskData(
                pick(self.observed),
                accuracies=pick(self.accuracies),
                heldout=pick(self.heldout),
                defaults=pick(self.defaults),
            )
        terms = self.posix_terms
        return TaskData(
            pick(self.observed),
            correct=np.asarray(self.correct)[keep],
            heldout=pick(self.heldout),
            defaults=pick(self.defaults),
            predicted=None if self.predicted is None else np.asarray(self.predicted)[keep],
            posix_terms=None if terms is None else np.asarray(terms)[keep][:, keep],
        )

    def unobserved(self) -> np.ndarray:
        return unobserved_mask(self.observed, self.defaults)

    def accuracy_vector(self) -> np.ndarray:
        if self.correct is not None:
            return phrasing_accuracy(self.correct)
        return np.asarray(self.accuracies, dtype=float)


def task_key(slug: str) -> int:
    """A task's bootstrap key from its slug (unique within a benchmark, and a benchmark row averages one
    benchmark's tasks): the same in every database the task is loaded or imported into, unlike its id, so a
    release imported elsewhere gets its benchmark intervals back to the last digit."""
    return int.from_bytes(hashlib.sha256(slug.encode()).digest()[:8], "big")


def task_rng(key: int, seed: int = SEED) -> np.random.Generator:
    """One task's bootstrap draws for benchmark intervals: seeded by the task (task_key of its slug), so a
    task's stored replicates are the same whichever other tasks a benchmark row averages, and tasks draw
    independently."""
    return np.random.default_rng([seed, key])


@dataclass(frozen=True)
class TaskPart:
    """What a benchmark row needs of one task: its point figures and bootstrap replicates of each."""

    point: dict[str, float | None]
    replicates: dict[str, np.ndarray]  # figure -> (samples,), NaN where undefined
    phrasings: int
    two_way: bool  # replicates resample instances too (a correctness matrix, not imported accuracies)


def task_part(
    task: TaskData, *, rng: np.random.Generator, samples: int, min_phrasings: int = MIN_PHRASINGS
) -> TaskPart:
    correct = np.asarray(task.correct, dtype=bool) if task.correct is not None else None
    observed, unobserved = np.asarray(task.observed, dtype=bool), task.unobserved()
    acc = task.accuracy_vector()
    inputs = task.instance_inputs()
    return TaskPart(
        point=point_figures(correct, acc, observed, unobserved, min_phrasings, **inputs),
        replicates=replicate_figures(
            rng,
            samples,
            observed,
            correct,
            acc,
            unobserved=unobserved,
            min_phrasings=min_phrasings,
            **inputs,
        ),
        phrasings=int(acc.size),
        two_way=correct is not None,
    )


def macro_summary(parts: Sequence[TaskPart], *, min_phrasings: int = MIN_PHRASINGS) -> dict:
    """Macro average over tasks of every per-task figure, with a 95% interval from averaging the tasks'
    bootstrap replicates replicate by replicate (each task bootstrapped on its own: two-way, or phrasings
    only for imported results)."""
    if not parts:
        raise ValueError("No tasks to summarise.")
    samples = {part.replicates["avgp"].size for part in parts}
    if len(samples) != 1:
        raise ValueError(f"Tasks carry different numbers of bootstrap replicates: {sorted(samples)}.")
    names = list(parts[0].point)
    point = macro_average([part.point for part in parts], names)
    replicates = macro_replicates(parts, names)
    methods = {"instances and phrasings" if part.two_way else "phrasings only" for part in parts}
    return {
        **point,
        "tasks": len(parts),
        # Tasks with enough phrasings for the spread figures (the others are left out of their averages).
        "spread_tasks": sum(part.phrasings >= min_phrasings for part in parts),
        "min_phrasings": min_phrasings,
        "phrasings": int(sum(part.phrasings for part in parts)),
        "ci": _intervals(point, replicates, samples.pop()),
        "ci_method": " + ".join(sorted(methods)),
    }


def macro_replicates(parts: Sequence[TaskPart], names: Sequence[str]) -> dict[str, np.ndarray]:
    """Each figure's benchmark replicates: the tasks' replicates averaged replicate by replicate, a task
    where the figure is undefined left out (the draws behind a benchmark row's intervals and its rank)."""
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: a figure no task defines
        return {
            name: np.nanmean(np.stack([part.replicates[name] for part in parts]), axis=0) for name in names
        }


def benchmark_summary(
    tasks: Sequence[TaskData],
    *,
    keys: Sequence[int] | None = None,
    samples: int = BOOTSTRAP_SAMPLES,
    seed: int = SEED,
    min_phrasings: int = MIN_PHRASINGS,
) -> dict:
    """macro_summary of the given tasks, each bootstrapped with task_rng(its key): task_key of the tasks'
    slugs, or the tasks' positions when no keys are given."""
    keys = range(len(tasks)) if keys is None else keys
    parts = [
        task_part(task, rng=task_rng(key, seed), samples=samples, min_phrasings=min_phrasings)
        for task, key in zip(tasks, keys, strict=True)
    ]
    return macro_summary(parts, min_phrasings=min_phrasings)
