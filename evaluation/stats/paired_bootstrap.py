"""A variant's improvement over the base model on the same cells, with a paired two-way bootstrap interval
(phrasings and instances resampled together for both), per task and macro-averaged over tasks. Pure numpy,
as metrics.py; robustness/outcome.py feeds it the soft prompts' held-out cells."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evaluation.stats.metrics import BOOTSTRAP_SAMPLES, SEED, drawn_row_means, two_way_draws


@dataclass(frozen=True)
class Improvement:
    """A variant's accuracy minus the base model's on the same cells, with a paired 95% interval."""

    difference: float
    ci: tuple[float, float]
    phrasings: int
    instances: int

    @property
    def excludes_zero(self) -> bool:
        return self.ci[0] > 0 or self.ci[1] < 0


def improvement_replicates(difference: np.ndarray, rng: np.random.Generator, samples: int) -> np.ndarray:
    """The mean of a (phrasings x instances) matrix of per-cell differences (variant correct minus base
    correct, each already averaged over the variant's seeds) on `samples` two-way bootstrap replicates. Both
    models get the same phrasing and instance draws, which is what makes the comparison paired; the draws
    are metrics.two_way_draws', so with the same seed this is the comparison page's AvgP difference."""
    d = np.asarray(difference, dtype=float)
    rows, counts = two_way_draws(rng, samples, *d.shape)
    return drawn_row_means(d, rows, counts).mean(axis=1)


def paired_improvement(
    per_task: dict[str, np.ndarray], *, samples: int = BOOTSTRAP_SAMPLES, seed: int = SEED
) -> tuple[dict[str, Improvement], Improvement]:
    """Per task and macro-averaged over tasks: the mean per-cell difference with a 95% percentile interval
    from the paired two-way bootstrap. The benchmark interval averages the tasks' replicates replicate by
    replicate, as benchmark_summary does. A fixed seed gives every method the same draws; task i draws with
    seed + i, as paired_comparison.compare does, so both give the same AvgP interval on the same cells."""
    if not per_task or any(np.asarray(d).size == 0 for d in per_task.values()):
        raise ValueError("Every task needs a non-empty matrix of differences.")
    out, replicates = {}, []
    for index, (name, d) in enumerate(per_task.items()):
        d = np.asarray(d, dtype=float)
        r = improvement_replicates(d, np.random.default_rng(seed + index), samples)
        replicates.append(r)
        out[name] = Improvement(
            float(d.mean()), (float(np.percentile(r, 2.5)), float(np.percentile(r, 97.5))), *d.shape
        )
    pooled = np.mean(replicates, axis=0)
    macro = Improvement(
        float(np.mean([i.difference for i in out.values()])),
        (float(np.percentile(pooled, 2.5)), float(np.percentile(pooled, 97.5))),
        sum(i.phrasings for i in out.values()),
        sum(i.instances for i in out.values()),
    )
    return out, macro
