"""Are phrasings with a tag better or worse than the rest? Pure numpy.

Per task, the difference between the mean accuracy of its phrasings with the tag and of its other phrasings;
over a set of tasks, the macro average of those differences (each task counts once, as on the leaderboard).
The 95% interval is a percentile bootstrap that resamples phrasings with replacement within each task and
group (tagged, others); the tasks are fixed, as the leaderboard reports on the benchmark's own tasks. A task
counts only with at least MIN_PER_GROUP phrasings on each side: with one, resampling could not show how much
that side's mean varies, and the interval would be too narrow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MIN_PER_GROUP = 2
SAMPLES = 2000


@dataclass(frozen=True)
class TagEffect:
    difference: float  # macro average over tasks of mean(tagged) - mean(others)
    low: float
    high: float
    tagged_avgp: float  # macro average of the tagged phrasings' mean accuracy, over the same tasks
    others_avgp: float
    tasks: int
    tagged: int  # phrasings counted on each side, over those tasks
    others: int

    @property
    def ci(self) -> tuple[float, float]:
        return (self.low, self.high)

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def tag_effect(
    tasks: Sequence[tuple[Sequence[float], Sequence[float]]], *, samples: int = SAMPLES, seed: int = 0
) -> TagEffect | None:
    """`tasks`: per task, (accuracies of the tagged phrasings, accuracies of the others). None when no task
    has MIN_PER_GROUP phrasings on each side."""
    kept = [
        (np.asarray(tagged, dtype=float), np.asarray(others, dtype=float))
        for tagged, others in tasks
        if len(tagged) >= MIN_PER_GROUP and len(others) >= MIN_PER_GROUP
    ]
    if not kept:
        return None
    rng = np.random.default_rng(seed)
    draws = np.zeros(samples)
    for tagged, others in kept:
        # One (samples, n) draw per side: row r is replicate r's resampled phrasings.
        draws += tagged[rng.integers(0, len(tagged), (samples, len(tagged)))].mean(axis=1)
        draws -= others[rng.integers(0, len(others), (samples, len(others)))].mean(axis=1)
    draws /= len(kept)
    tagged_avgp = float(np.mean([t.mean() for t, _ in kept]))
    others_avgp = float(np.mean([o.mean() for _, o in kept]))
    low, high = np.percentile(draws, [2.5, 97.5])
    return TagEffect(
        difference=tagged_avgp - others_avgp,
        low=float(low),
        high=float(high),
        tagged_avgp=tagged_avgp,
        others_avgp=others_avgp,
        tasks=len(kept),
        tagged=sum(len(t) for t, _ in kept),
        others=sum(len(o) for _, o in kept),
    )
