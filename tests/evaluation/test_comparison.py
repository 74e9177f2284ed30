"""The paired comparison's maths: same draws for both variants, so shared difficulty cancels."""

import numpy as np
import pytest

from evaluation.stats import metrics, paired_comparison


def _data(correct, observed=None):
    correct = np.asarray(correct, dtype=bool)
    return metrics.TaskData(observed or [False] * correct.shape[0], correct=correct)


def test_a_variant_against_itself_differs_by_exactly_zero():
    rng = np.random.default_rng(1)
    a = _data(rng.random((6, 40)) < 0.6)
    result = paired_comparison.compare([(a, a)], samples=200, min_phrasings=3)
    for name in ("avgp", "std", "q10", "consistency"):
        d = result.overall[name]
        assert d.difference == 0 and d.ci == (0.0, 0.0) and not d.excludes_zero


def test_a_small_shared_advantage_is_resolved_because_the_draws_are_paired():
    rng = np.random.default_rng(2)
    hard = rng.random((8, 200)) < 0.5  # B's answers
    better = hard.copy()
    better[:, :10] = True  # A gets 10 more instances right on every phrasing (+5 points at most)
    a, b = _data(better), _data(hard)
    result = paired_comparison.compare([(a, b)], samples=300, min_phrasings=3)
    d = result.overall["avgp"]
    assert d.difference == pytest.approx(better.mean() - hard.mean())
    assert d.excludes_zero and d.ci[0] > 0
    # Unpaired, the two models' own intervals overlap: the pairing is what resolves the difference.
    own_a = metrics.summarise(correct=better, observed=[False] * 8, samples=300).ci["avgp"]
    own_b = metrics.summarise(correct=hard, observed=[False] * 8, samples=300).ci["avgp"]
    assert own_a[0] < own_b[1]


def test_published_accuracies_are_compared_by_phrasing_and_tasks_are_macro_averaged():
    a1 = metrics.TaskData([False] * 4, accuracies=[0.6, 0.7, 0.8, 0.9])
    b1 = metrics.TaskData([False] * 4, accuracies=[0.5, 0.6, 0.7, 0.8])
    scored = _data(np.ones((4, 10)))  # a scored task against a published one: compared by phrasing
    published = metrics.TaskData([False] * 4, accuracies=[0.9, 0.9, 0.9, 0.9])
    result = paired_comparison.compare([(a1, b1), (scored, published)], samples=200, min_phrasings=3)
    assert result.per_task[0]["avgp"].difference == pytest.approx(0.1)
    assert result.per_task[1]["avgp"].difference == pytest.approx(0.1)
    assert result.overall["avgp"].difference == pytest.approx(0.1)
    assert result.ci_method == "phrasings only"
    with pytest.raises(ValueError, match="same phrasings"):
        paired_comparison.compare([(a1, metrics.TaskData([False] * 3, accuracies=[0.1, 0.2, 0.3]))])


def test_a_figure_one_variant_lacks_on_a_task_leaves_that_task_out_of_both_sides():
    rng = np.random.default_rng(3)
    first = rng.random((6, 50)) < 0.6
    # Task 1: both have observed phrasings; task 2: only A does, so only task 1 gives a gap difference.
    a1, b1 = _data(first, [True, True, True, False, False, False]), _data(first, [True] * 3 + [False] * 3)
    a2, b2 = _data(first, [True] * 3 + [False] * 3), _data(first, [False] * 6)
    result = paired_comparison.compare([(a1, b1), (a2, b2)], samples=200, min_phrasings=3)
    assert result.per_task[1]["gap"].difference is None
    gap = result.overall["gap"]
    assert gap.difference == pytest.approx(result.per_task[0]["gap"].difference)
    assert gap.ci == pytest.approx(result.per_task[0]["gap"].ci)


def test_a_figure_only_one_variant_has_anywhere_shows_its_own_value_and_no_difference():
    rng = np.random.default_rng(4)
    first, second = rng.random((6, 50)) < 0.6, rng.random((6, 50)) < 0.7
    observed = [True] * 3 + [False] * 3
    # A has observed phrasings on both tasks, B (tuned on nothing) on neither.
    pairs = [(_data(first, observed), _data(first)), (_data(second, observed), _data(second))]
    result = paired_comparison.compare(pairs, samples=200, min_phrasings=3)
    for name in ("observed_avgp", "gap"):
        overall = result.overall[name]
        own = np.mean([task[name].a for task in result.per_task])
        assert (overall.a, overall.b, overall.difference, overall.ci) == (
            pytest.approx(own),
            None,
            None,
            None,
        )
    # Figures both have are still over the same tasks on both sides.
    assert result.overall["avgp"].difference == pytest.approx(0.0)
