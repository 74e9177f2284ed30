"""Every metric against values computed by hand for a small correctness matrix:

instance:   x1 x2 x3 x4   accuracy
p1 (obs)     1  1  1  0     0.75
p2 (obs)     1  0  1  0     0.50
p3 (unobs)   0  0  1  0     0.25
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from evaluation.stats import metrics

CORRECT = np.array([[1, 1, 1, 0], [1, 0, 1, 0], [0, 0, 1, 0]], dtype=bool)
OBSERVED = [True, True, False]


def test_per_phrasing_accuracy():
    assert metrics.phrasing_accuracy(CORRECT).tolist() == [0.75, 0.5, 0.25]


def test_spread_figures_match_hand_computed_values():
    f = metrics.spread_figures([0.75, 0.5, 0.25])
    assert f["avgp"] == pytest.approx(0.5)
    assert f["std"] == pytest.approx(math.sqrt((0.25**2 + 0 + 0.25**2) / 3))  # population std: 0.2041
    assert (f["min"], f["median"], f["maxp"], f["spread"]) == pytest.approx((0.25, 0.5, 0.75, 0.5))
    assert f["q10"] == pytest.approx(0.30)  # 0.25 + 0.2 x (0.50 - 0.25): linear interpolation
    assert f["cps"] == pytest.approx(0.75 * (1 - (0.75 - 0.5)))  # 0.5625


def test_consistency_matches_hand_computed_value():
    # a_x = 2/3, 1/3, 1, 0; 2 a (1 - a) K/(K-1) = 2/3, 2/3, 0, 0; mean 1/3; consistency 2/3.
    assert metrics.consistency(CORRECT) == pytest.approx(2 / 3)
    assert metrics.consistency(np.ones((4, 5), dtype=bool)) == 1.0
    assert metrics.consistency(CORRECT[:1]) is None  # one phrasing: nothing to agree with


def test_observed_figures_match_hand_computed_values():
    f = metrics.observed_figures([0.75, 0.5, 0.25], OBSERVED)
    assert f["observed_avgp"] == pytest.approx(0.625)
    assert f["unobserved_avgp"] == pytest.approx(0.25)
    assert f["gap"] == pytest.approx(0.375)
    assert f["pdr"] == pytest.approx(1 - 0.25 / 0.625)  # 0.6
    none = metrics.observed_figures([0.5, 0.7], [False, False])
    assert none["observed_avgp"] is None and none["gap"] is None and none["pdr"] is None


def test_summary_has_every_figure_and_seeded_intervals_around_them():
    s = metrics.summarise(correct=CORRECT, observed=OBSERVED, samples=400)
    assert (s.phrasings, s.instances, s.ci_method) == (3, 4, "instances and phrasings")
    assert (s.avgp, s.consistency, s.gap) == pytest.approx((0.5, 2 / 3, 0.375))
    for name in ("avgp", "std", "min", "maxp", "spread", "cps", "consistency"):
        low, high = s.ci[name]
        assert low <= getattr(s, name) + 1e-9 and getattr(s, name) - 1e-9 <= high, name
    assert s == metrics.summarise(correct=CORRECT, observed=OBSERVED, samples=400)  # fixed seed


def test_imported_results_resample_phrasings_only():
    s = metrics.summarise(accuracies=[0.75, 0.5, 0.25], observed=OBSERVED, samples=400)
    assert (s.instances, s.consistency, s.ci_method) == (None, None, "phrasings only")
    assert s.avgp == pytest.approx(0.5)
    # Resampling three phrasings: the mean can only take values between the extremes.
    assert 0.25 <= s.ci["avgp"][0] <= 0.5 <= s.ci["avgp"][1] <= 0.75


def test_benchmark_figures_are_macro_averages_over_tasks():
    tasks = [{"std": 0.1, "gap": None}, {"std": 0.3, "gap": 0.2}]
    assert metrics.macro_average(tasks, ["std", "gap"]) == pytest.approx({"std": 0.2, "gap": 0.2})


def test_spread_figures_need_the_minimum_of_phrasings_on_a_task():
    one = np.array([[1, 0, 1, 1]], dtype=bool)  # one phrasing: Std 0 and Consistency 100 mean nothing
    summary = metrics.summarise(correct=one, observed=[False], samples=50, min_phrasings=3)
    assert summary.avgp == 0.75
    assert summary.std is None and summary.consistency is None and summary.spread is None
    assert "std" not in summary.ci and "avgp" in summary.ci
    # In a benchmark, such a task is left out of the spread figures' averages, and counted.
    other = np.array([[1, 1], [1, 0], [0, 0]], dtype=bool)
    bench = metrics.benchmark_summary(
        [metrics.TaskData([False], correct=one), metrics.TaskData([False] * 3, correct=other)],
        samples=50,
        min_phrasings=3,
    )
    assert bench["std"] == pytest.approx(np.std([1.0, 0.5, 0.0]))
    assert bench["avgp"] == pytest.approx((0.75 + 0.5) / 2)
    assert (bench["tasks"], bench["spread_tasks"]) == (2, 1)


def test_a_benchmark_summary_macro_averages_tasks_with_an_interval():
    other = np.array([[1, 1], [1, 1]], dtype=bool)  # accuracy 1.0 twice: std 0
    summary = metrics.benchmark_summary(
        [metrics.TaskData(OBSERVED, correct=CORRECT), metrics.TaskData([False, False], correct=other)],
        samples=300,
        min_phrasings=2,
    )
    assert summary["avgp"] == pytest.approx((0.5 + 1.0) / 2)
    assert summary["std"] == pytest.approx((math.sqrt(0.125 / 3) + 0) / 2)
    assert summary["gap"] == pytest.approx(0.375)  # only the first task has both kinds of phrasing
    assert (summary["tasks"], summary["phrasings"]) == (2, 5)
    low, high = summary["ci"]["avgp"]
    assert low <= summary["avgp"] <= high
    imported = metrics.benchmark_summary(
        [metrics.TaskData(OBSERVED, accuracies=[0.75, 0.5, 0.25])], samples=100
    )
    assert imported["ci_method"] == "phrasings only" and imported["consistency"] is None


def test_the_wilson_interval_is_scipys():
    from scipy.stats import binomtest

    k, n = [0, 3, 50, 97, 100], [100, 10, 100, 100, 100]
    lows, highs = metrics.wilson_interval(k, n)
    for i in range(len(k)):
        want = binomtest(k[i], n[i]).proportion_ci(method="wilson")
        assert (lows[i], highs[i]) == pytest.approx((want.low, want.high), abs=1e-12)
