"""Which differences on a ranked board are real: rank intervals and tie groups from paired bootstrap draws.

Every ranked row of a board is measured on the same common ground, and its stored bootstrap replicates are
drawn with the same seed per task and the same shapes (metrics.two_way_draws, metrics.task_rng), so draw b of
one row and draw b of another resample the same phrasings and instances: their difference in draw b is a
paired bootstrap draw of the difference. On those draws:

1. Two rows are *separable* when their point difference is larger than z times the standard deviation of
   their paired draw differences, with z the normal quantile at 1 - alpha / (2m) and m = n(n-1)/2, the
   number of pairs on a board of n rows (Bonferroni: the chance that any pair of equal rows is called
   separable stays at or below alpha = 5%, however many rows there are). A normal approximation rather than
   a percentile interval, because at m = 4,950 pairs (100 rows) the tail would lie beyond the 500 stored draws.
2. A row's *rank interval* is [1 + the rows separably above it, n - the rows separably below it]: the ranks
   it could hold given the differences the data can tell apart (the rule LMArena's "rank (UB)" uses for its
   upper end).
3. *Tie groups* are cut greedily down the sorted board: the first row leads group 1; each next row joins the
   current group while it is not separable from the group's leader, and the first row separable from the
   leader starts the next group. Rows in one group cannot be ordered by the data; the rank intervals say
   where groups overlap.

Pure numpy (no Django): the leaderboards (evaluation/leaderboards/common_ground.py) pass each ranked row's draws.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

ALPHA = 0.05  # family-wise, over every pair of the board's rows

# What a page or the API says of its rank intervals and tie groups.
RULE = (
    "Rank intervals and tie groups are on the figure the rows are sorted by. Two rows are told apart when their "
    "difference exceeds z times the standard deviation of its paired bootstrap draws (the same phrasings and "
    "instances drawn for both), z Bonferroni-corrected over every pair of ranked rows (family-wise 5%). A row's "
    "rank interval runs from 1 + the rows told apart above it to n - the rows told apart below it; a tie group "
    "holds the rows, in sorted order, that cannot be told apart from the group's first row."
)


@dataclass(frozen=True)
class Standing:
    """One row's place on a board: its rank interval and tie group (1 = the top group)."""

    rank_low: int
    rank_high: int
    tie_group: int

    @property
    def rank_interval(self) -> str:
        return str(self.rank_low) if self.rank_low == self.rank_high else f"{self.rank_low}–{self.rank_high}"

    def as_dict(self) -> dict:
        return {"rank_interval": [self.rank_low, self.rank_high], "tie_group": self.tie_group}


def critical_z(rows: int, alpha: float = ALPHA) -> float:
    pairs = max(rows * (rows - 1) // 2, 1)
    return NormalDist().inv_cdf(1 - alpha / (2 * pairs))


def separable(points: np.ndarray, draws: np.ndarray, alpha: float = ALPHA) -> np.ndarray:
    """(n, n) booleans: [i, j] when rows i and j can be told apart (point i - j beyond z times the standard
    deviation of the paired draws' differences). `draws` is (n, B); a row's NaN draws (a figure missing from
    a replicate) are left out of that pair's deviation."""
    points = np.asarray(points, dtype=float)
    draws = np.asarray(draws, dtype=float)
    n = points.size
    diff_points = points[:, None] - points[None, :]
    spread = np.empty((n, n))
    # Row by row, so memory stays at one (n, B) block however large the board; a pair with no common draw
    # (all NaN) gets a NaN deviation and is not separable.
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for i in range(n):
            spread[i] = np.nanstd(draws[i] - draws, axis=1, ddof=1)
    out = np.abs(diff_points) > critical_z(n, alpha) * spread
    out &= np.isfinite(spread)
    np.fill_diagonal(out, False)
    return out


def standings(points, apart: np.ndarray, *, descending: bool = True) -> list[Standing | None]:
    """Each row's rank interval and tie group, given its point figure and the board's `separable` matrix;
    `descending` when higher is better (the board's sort). Rows without a point figure get None."""
    points = np.asarray([np.nan if p is None else p for p in points], dtype=float)
    sign = 1.0 if descending else -1.0
    present = np.flatnonzero(np.isfinite(points))
    out: list[Standing | None] = [None] * points.size
    if present.size == 0:
        return out
    p = sign * points[present]
    apart = np.asarray(apart, dtype=bool)[np.ix_(present, present)]
    above = apart & (p[None, :] > p[:, None])  # [i, j]: j separably better than i
    below = apart & (p[None, :] < p[:, None])
    n = p.size
    groups = np.zeros(n, dtype=int)
    group, leader = 0, None
    for i in np.argsort(-p, kind="stable"):
        if leader is None or apart[leader, i]:
            group, leader = group + 1, i
        groups[i] = group
    for k, i in enumerate(present):
        out[i] = Standing(
            rank_low=int(1 + above[k].sum()), rank_high=int(n - below[k].sum()), tie_group=int(groups[k])
        )
    return out
