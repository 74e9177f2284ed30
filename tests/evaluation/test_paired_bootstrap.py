"""The paired two-way bootstrap of a variant's improvement over the base model (evaluation/stats/paired_bootstrap.py)."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.stats import metrics
from evaluation.stats.paired_bootstrap import improvement_replicates, paired_improvement
from evaluation.stats.paired_comparison import compare


def test_the_point_is_the_mean_difference_and_a_clear_gain_excludes_zero():
    rng = np.random.default_rng(0)
    base = (rng.random((20, 50)) < 0.5).astype(float)
    better = np.maximum(base, (rng.random((20, 50)) < 0.3).astype(float))
    per_task, macro = paired_improvement({"a": better - base, "b": better - base})
    assert per_task["a"].difference == pytest.approx((better - base).mean())
    assert per_task["a"].excludes_zero and macro.excludes_zero
    assert (per_task["a"].phrasings, per_task["a"].instances) == (20, 50)
    assert macro.phrasings == 40


def test_noise_alone_gives_an_interval_across_zero():
    rng = np.random.default_rng(1)
    a = (rng.random((20, 60)) < 0.6).astype(float)
    b = (rng.random((20, 60)) < 0.6).astype(float)
    _, macro = paired_improvement({"t": a - b})
    assert macro.ci[0] < 0 < macro.ci[1] and not macro.excludes_zero


def test_replicates_spread_like_an_explicit_resampling_of_rows_and_columns():
    # A gain carried by a few phrasings: resampling phrasings must widen the interval, as drawing rows
    # and columns with replacement (the slow way) does.
    rng = np.random.default_rng(2)
    d = np.zeros((12, 40))
    d[:3] = (rng.random((3, 40)) < 0.8).astype(float)
    fast = improvement_replicates(d, np.random.default_rng(3), 4000)
    slow_rng = np.random.default_rng(4)
    slow = [d[np.ix_(slow_rng.integers(0, 12, 12), slow_rng.integers(0, 40, 40))].mean() for _ in range(4000)]
    assert fast.mean() == pytest.approx(d.mean(), abs=0.01)
    assert fast.std() == pytest.approx(np.std(slow), rel=0.1)
    # Instances alone would give a much narrower spread: the phrasing draw matters.
    columns_only = [d[:, slow_rng.integers(0, 40, 40)].mean() for _ in range(2000)]
    assert fast.std() > 2 * np.std(columns_only)


def test_it_refuses_an_empty_task():
    with pytest.raises(ValueError):
        paired_improvement({"t": np.zeros((0, 5))})


def test_the_soft_prompt_outcome_s_interval_is_the_comparison_page_s_avgp_interval():
    # One bootstrap, two uses: on boolean matrices the improvement over the base model is the comparison's
    # AvgP difference, point and interval, per task and over tasks.
    rng = np.random.default_rng(5)
    pairs = []
    for shape in ((7, 30), (9, 25)):
        base = rng.random(shape) < 0.5
        pairs.append((base | (rng.random(shape) < 0.2), base))
    per_task, macro = paired_improvement({f"t{i}": a.astype(float) - b for i, (a, b) in enumerate(pairs)})
    result = compare(
        [
            (
                metrics.TaskData(np.zeros(len(a), dtype=bool), correct=a),
                metrics.TaskData(np.zeros(len(b), dtype=bool), correct=b),
            )
            for a, b in pairs
        ]
    )
    for i, task in enumerate(result.per_task):
        assert task["avgp"].difference == pytest.approx(per_task[f"t{i}"].difference)
        assert task["avgp"].ci == pytest.approx(per_task[f"t{i}"].ci)
    assert result.overall["avgp"].ci == pytest.approx(macro.ci)
    assert result.overall["avgp"].difference == pytest.approx(macro.difference)
