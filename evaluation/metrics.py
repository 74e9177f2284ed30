"""Robustness metrics across phrasings, as pure functions (numpy, no Django). Definitions: ../shared/DESIGN.md,
"Robustness metrics"; conventions are stated where a definition leaves a choice.

Inputs are a correctness matrix `correct[k, x]` (phrasing k got instance x right) when per-instance
predictions exist, or only the per-phrasing accuracies when results were imported from a publication.
All figures are fractions in [0, 1]; pages show them as percentages and the gap in percentage points.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

SEED = 20240507  # fixed: the same data always gives the same intervals
BOOTSTRAP_SAMPLES = 1000
FIGURES = ("avgp", "std", "min", "q10", "median", "maxp", "spread", "cps", "consistency")


def phrasing_accuracy(correct: np.ndarray) -> np.ndarray:
    """Per-phrasing accuracy A_p over the instances (rows are phrasings)."""
    return np.asarray(correct, dtype=float).mean(axis=1)


def spread_figures(accuracies: Sequence[float]) -> dict[str, float]:
    """AvgP, Std (population), Min, Q10, Median, MaxP, Spread and CPS of per-phrasing accuracies.

    Q10 and the median use linear interpolation between order statistics (numpy's default)."""
    a = np.asarray(accuracies, dtype=float)
    avgp, maxp = float(a.mean()), float(a.max())
    return {
        "avgp": avgp,
        "std": float(a.std(ddof=0)),
        "min": float(a.min()),
        "q10": float(np.percentile(a, 10)),
        "median": float(np.median(a)),
        "maxp": maxp,
        "spread": maxp - float(a.min()),
        # Mizrahi et al. (TACL 2024): rewards a high best phrasing, penalises its distance from the average.
        "cps": maxp * (1 - (maxp - avgp)),
    }


def consistency(correct: np.ndarray) -> float | None:
    """1 - mean_x 2 a_x (1 - a_x) K / (K - 1), a_x = share of the K phrasings right on instance x.

    2 a (1 - a) K / (K - 1) is the chance that two different phrasings disagree on x (ProSA's sensitivity);
    1 means every phrasing agrees on every instance. Undefined (None) with fewer than two phrasings."""
    c = np.asarray(correct, dtype=float)
    k = c.shape[0]
    if k < 2 or c.shape[1] == 0:
        return None
    a = c.mean(axis=0)
    return float(1 - np.mean(2 * a * (1 - a) * k / (k - 1)))


def observed_figures(accuracies: Sequence[float], observed: Sequence[bool]) -> dict[str, float | None]:
    """Observed AvgP, Unobserved AvgP, Gap = observed - unobserved, PDR = 1 - unobserved / observed."""
    a = np.asarray(accuracies, dtype=float)
    mask = np.asarray(observed, dtype=bool)
    obs = float(a[mask].mean()) if mask.any() else None
    unobs = float(a[~mask].mean()) if (~mask).any() else None
    both = obs is not None and unobs is not None
    return {
        "observed_avgp": obs,
        "unobserved_avgp": unobs,
        "gap": obs - unobs if both else None,
        "pdr": 1 - unobs / obs if both and obs > 0 else None,
    }


@dataclass(frozen=True)
class Summary:
    """Every figure for one model variant on one task over one set of phrasings."""

    phrasings: int
    instances: int | None  # None for imported results (no per-instance data)
    avgp: float
    std: float
    min: float
    q10: float
    median: float
    maxp: float
    spread: float
    cps: float
    consistency: float | None
    observed_avgp: float | None
    unobserved_avgp: float | None
    gap: float | None
    pdr: float | None
    ci: dict[str, tuple[float, float]]  # figure -> 95% interval
    ci_method: str  # "instances and phrasings" or "phrasings only"

    def as_dict(self) -> dict:
        return asdict(self)


def _figures(correct: np.ndarray | None, accuracies: np.ndarray, observed: np.ndarray) -> dict[str, float | None]:
    figures: dict[str, float | None] = dict(spread_figures(accuracies))
    figures["consistency"] = consistency(correct) if correct is not None else None
    figures.update(observed_figures(accuracies, observed))
    return figures


def summarise(
    *,
    correct: np.ndarray | None = None,
    accuracies: Sequence[float] | None = None,
    observed: Sequence[bool],
    samples: int = BOOTSTRAP_SAMPLES,
    seed: int = SEED,
) -> Summary:
    """All figures with 95% bootstrap intervals.

    With a correctness matrix the bootstrap is two-way: each replicate resamples phrasings and instances
    with replacement, so the interval reflects both which phrasings were written and which instances were
    drawn. With accuracies only (imported results) it resamples phrasings only."""
    observed_mask = np.asarray(observed, dtype=bool)
    if correct is not None:
        correct = np.asarray(correct, dtype=bool)
        acc = phrasing_accuracy(correct)
    else:
        acc = np.asarray(accuracies, dtype=float)
    if acc.size == 0:
        raise ValueError("No phrasings to summarise.")
    point = _figures(correct, acc, observed_mask)

    rng = np.random.default_rng(seed)
    k = acc.size
    replicates: dict[str, list[float]] = {name: [] for name in point}
    for _ in range(samples):
        rows = rng.integers(0, k, size=k)
        if correct is not None:
            cols = rng.integers(0, correct.shape[1], size=correct.shape[1])
            sub = correct[np.ix_(rows, cols)]
            figures = _figures(sub, phrasing_accuracy(sub), observed_mask[rows])
        else:
            figures = _figures(None, acc[rows], observed_mask[rows])
        for name, value in figures.items():
            if value is not None:
                replicates[name].append(value)
    ci = {
        name: (float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5)))
        for name, values in replicates.items()
        # A figure missing from most replicates (e.g. no observed phrasing drawn) gets no interval.
        if point[name] is not None and len(values) >= samples // 2
    }
    return Summary(
        phrasings=k,
        instances=int(correct.shape[1]) if correct is not None else None,
        ci=ci,
        ci_method="instances and phrasings" if correct is not None else "phrasings only",
        **point,
    )


@dataclass(frozen=True)
class PairedComparison:
    cells: int
    mean_a: float
    mean_b: float
    difference: float  # a - b, on the same (phrasing, instance) cells
    ci: tuple[float, float]
    p_value: float  # two-sided, from the bootstrap distribution of the difference


def paired_comparison(
    correct_a: np.ndarray, correct_b: np.ndarray, *, samples: int = BOOTSTRAP_SAMPLES, seed: int = SEED
) -> PairedComparison:
    """Compare two models on the same cells: the same phrasings (rows) and instances (columns) for both.

    The two-way bootstrap draws the same rows and columns for both models, so what is shared (hard
    instances, bad phrasings) cancels in the difference."""
    a = np.asarray(correct_a, dtype=float)
    b = np.asarray(correct_b, dtype=float)
    if a.shape != b.shape or a.size == 0:
        raise ValueError("Both models need predictions on the same, non-empty set of cells.")
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(samples):
        rows = rng.integers(0, a.shape[0], size=a.shape[0])
        cols = rng.integers(0, a.shape[1], size=a.shape[1])
        diffs.append(a[np.ix_(rows, cols)].mean() - b[np.ix_(rows, cols)].mean())
    d = np.asarray(diffs)
    difference = float(a.mean() - b.mean())
    # Two-sided bootstrap p-value: how often the resampled difference falls on the other side of zero.
    p = 2 * min(float(np.mean(d <= 0)), float(np.mean(d >= 0)))
    return PairedComparison(
        cells=int(a.size),
        mean_a=float(a.mean()),
        mean_b=float(b.mean()),
        difference=difference,
        ci=(float(np.percentile(d, 2.5)), float(np.percentile(d, 97.5))),
        p_value=min(1.0, p),
    )


def macro_average(per_task: Sequence[dict[str, float | None]], names: Sequence[str]) -> dict[str, float | None]:
    """Benchmark figures: the plain mean over tasks of each per-task figure (a benchmark's Std is the mean
    of its tasks' Stds). Tasks where a figure is undefined are left out of that figure's mean."""
    out: dict[str, float | None] = {}
    for name in names:
        values = [row[name] for row in per_task if row.get(name) is not None]
        out[name] = float(np.mean(values)) if values else None
    return out


