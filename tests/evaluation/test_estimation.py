"""The budgeted-evaluation estimator and cell chooser (evaluation/stats/estimation.py), on synthetic matrices drawn
from a known Rasch model: pure maths, no database."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit

from evaluation.stats import estimation, metrics


def rasch(seed: int, phrasings: int, instances: int, theta_sd: float = 0.6):
    """A full matrix drawn from P(correct) = sigmoid(0.5 + theta_p + beta_i), with its true effects."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(0, theta_sd, phrasings)
    beta = rng.normal(0, 1.0, instances)
    correct = rng.random((phrasings, instances)) < expit(0.5 + theta[:, None] + beta[None, :])
    return correct, theta, beta


def sample(correct: np.ndarray, share: float, seed: int) -> np.ndarray:
    """A uniform sample of cells as (phrasing, instance, correct) rows."""
    rng = np.random.default_rng(seed)
    flat = rng.choice(correct.size, size=round(share * correct.size), replace=False)
    p, i = np.unravel_index(flat, correct.shape)
    return np.column_stack([p, i, correct[p, i]])


def all_cells(correct: np.ndarray) -> np.ndarray:
    p, i = np.nonzero(np.ones_like(correct))
    return np.column_stack([p, i, correct[p, i]])


def centred(x: np.ndarray) -> np.ndarray:
    return x - x.mean()


# ---- the estimator ------------------------------------------------------------------------------------------


def test_it_recovers_known_phrasing_effects():
    correct, theta, _ = rasch(0, phrasings=20, instances=400, theta_sd=1.0)
    est = estimation.estimate_spread(sample(correct, 0.5, 1), correct.shape, draws=50)
    error = centred(est.theta) - centred(theta)  # theta and beta share an additive constant
    assert np.sqrt(np.mean(error**2)) < 0.25
    assert np.abs(error).max() < 0.6
    assert est.prior_sd["phrasing"] == pytest.approx(theta.std(), rel=0.35)
    assert set(est.prior_sd) == {"phrasing", "instance"}  # no covariates given


def test_its_intervals_cover_the_exhaustive_figures_in_most_seeds():
    covered = {"avgp": 0, "q10": 0, "median": 0, "q90": 0}
    phrasing_coverage = []
    for seed in range(10):
        correct, _, _ = rasch(seed, phrasings=40, instances=60)
        truth = estimation.figures_of(correct.mean(axis=1))
        est = estimation.estimate_spread(sample(correct, 0.25, seed), correct.shape, draws=300, seed=seed)
        for name in covered:
            low, high = est.ci[name]
            covered[name] += low <= truth[name] <= high
        exact = correct.mean(axis=1)
        phrasing_coverage.append(np.mean((est.accuracy_ci[:, 0] <= exact) & (exact <= est.accuracy_ci[:, 1])))
    assert all(count >= 8 for count in covered.values()), covered
    assert np.mean(phrasing_coverage) >= 0.85


def test_on_a_full_matrix_the_figures_are_the_exhaustive_ones():
    correct, _, _ = rasch(3, phrasings=15, instances=30)
    est = estimation.estimate_spread(all_cells(correct), correct.shape)
    accuracy = metrics.phrasing_accuracy(correct)
    assert est.accuracy.tolist() == accuracy.tolist()
    exhaustive = metrics.spread_figures(accuracy)
    assert {name: est.figures[name] for name in exhaustive} == exhaustive
    assert est.figures["q90"] == np.percentile(accuracy, 90)
    assert all(low == high for low, high in est.ci.values())
    assert est.share == 1.0


def test_draw_figures_agree_with_figures_of():
    rows = np.random.default_rng(4).random((7, 23))
    by_row = estimation.figures_by_row(rows)
    for n, row in enumerate(rows):
        assert {name: values[n] for name, values in by_row.items()} == pytest.approx(
            estimation.figures_of(row)
        )


def test_observed_cells_are_plugged_in():
    correct, _, _ = rasch(5, phrasings=10, instances=20)
    cells = all_cells(correct)
    cells = cells[cells[:, 0] != 0]  # phrasing 0 unobserved, the others complete
    est = estimation.estimate_spread(cells, correct.shape, draws=50)
    assert est.accuracy[1:].tolist() == correct[1:].mean(axis=1).tolist()
    assert 0 < est.accuracy[0] < 1


def test_covariates_that_explain_the_phrasing_effects_sharpen_them():
    correct, theta, _ = rasch(6, phrasings=60, instances=80, theta_sd=1.0)
    cells = sample(correct, 0.05, 6)
    plain = estimation.estimate_spread(cells, correct.shape, draws=20)
    noise = np.random.default_rng(6).normal(0, 0.2, (60, 3))
    helped = estimation.estimate_spread(cells, correct.shape, covariates=theta[:, None] + noise, draws=20)
    assert np.corrcoef(helped.theta, theta)[0, 1] > np.corrcoef(plain.theta, theta)[0, 1] + 0.05
    assert np.corrcoef(helped.theta, theta)[0, 1] > 0.9


def test_shared_instance_effects_sharpen_the_instance_effects():
    correct, _, beta = rasch(7, phrasings=30, instances=100)
    cells = sample(correct, 0.05, 7)
    plain = estimation.estimate_spread(cells, correct.shape, draws=20)
    helped = estimation.estimate_spread(cells, correct.shape, instance_effects=beta, draws=20)
    assert np.corrcoef(helped.beta, beta)[0, 1] > 0.97
    assert np.corrcoef(helped.beta, beta)[0, 1] > np.corrcoef(plain.beta, beta)[0, 1] + 0.1


def test_it_fits_when_every_observed_cell_is_right():
    correct = np.ones((5, 8), dtype=bool)
    est = estimation.estimate_spread(sample(correct, 0.5, 8), correct.shape, draws=50)
    assert est.figures["avgp"] > 0.8


# ---- choosing cells -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["adaptive", "uniform"])
def test_the_chooser_spends_the_budget_exactly_and_only_on_free_cells(strategy):
    rng = np.random.default_rng(9)
    mask = rng.random((30, 40)) < 0.3
    cells = estimation.choose_cells(mask, 200, rng, strategy)
    assert cells.shape == (200, 2)
    assert not mask[cells[:, 0], cells[:, 1]].any()
    assert len({tuple(c) for c in cells.tolist()}) == 200


def test_the_chooser_can_take_every_free_cell():
    mask = np.random.default_rng(10).random((6, 7)) < 0.5
    cells = estimation.choose_cells(mask, int((~mask).sum()), np.random.default_rng(10))
    mask[cells[:, 0], cells[:, 1]] = True
    assert mask.all()


def test_a_zero_budget_chooses_nothing():
    cells = estimation.choose_cells(np.zeros((3, 4), dtype=bool), 0, np.random.default_rng(0))
    assert cells.shape == (0, 2)


def test_adaptive_first_covers_every_phrasing_and_instance_evenly():
    mask = np.zeros((30, 50), dtype=bool)
    cells = estimation.choose_cells(mask, 50, np.random.default_rng(11), "adaptive")
    rows = np.bincount(cells[:, 0], minlength=30)
    cols = np.bincount(cells[:, 1], minlength=50)
    assert cols.tolist() == [1] * 50
    assert rows.min() >= 1 and rows.max() - rows.min() <= 1


def test_adaptive_rounds_follow_the_estimate_and_stay_on_free_cells():
    correct, _, _ = rasch(12, phrasings=20, instances=30)
    cells = sample(correct, 0.2, 12)
    est = estimation.estimate_spread(cells, correct.shape, draws=50)
    mask = np.zeros(correct.shape, dtype=bool)
    mask[cells[:, 0], cells[:, 1]] = True
    new = estimation.choose_cells(mask, 100, np.random.default_rng(12), "adaptive", est)
    assert new.shape == (100, 2)
    assert not mask[new[:, 0], new[:, 1]].any()
    assert len({tuple(c) for c in new.tolist()}) == 100


@pytest.mark.parametrize("strategy", ["adaptive", "uniform"])
def test_budgeted_estimate_scores_exactly_the_budget(strategy):
    correct, _, _ = rasch(13, phrasings=25, instances=40)
    asked = []

    def query(cells):
        asked.append(len(cells))
        return correct[cells[:, 0], cells[:, 1]]

    est, cells = estimation.budgeted_estimate(
        query, correct.shape, 150, np.random.default_rng(13), strategy=strategy, draws=50
    )
    assert sum(asked) == 150 == est.observed == len(cells)
    assert len({(p, i) for p, i, _ in cells.tolist()}) == 150
    assert (cells[:, 2] == correct[cells[:, 0], cells[:, 1]]).all()
    assert len(asked) == (3 if strategy == "adaptive" else 1)


# ---- bad input ----------------------------------------------------------------------------------------------


def test_a_budget_above_the_free_cells_is_refused():
    mask = np.zeros((3, 4), dtype=bool)
    mask[0] = True
    with pytest.raises(ValueError, match="budget 9"):
        estimation.choose_cells(mask, 9, np.random.default_rng(0))
    with pytest.raises(ValueError, match="budget -1"):
        estimation.choose_cells(mask, -1, np.random.default_rng(0))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"observed_mask": np.zeros(5, dtype=bool)}, "2-D"),
        ({"strategy": "greedy"}, "strategy"),
    ],
)
def test_the_chooser_refuses_bad_arguments(kwargs, message):
    args = {"observed_mask": np.zeros((3, 4), dtype=bool), "budget": 2, "strategy": "adaptive", **kwargs}
    with pytest.raises(ValueError, match=message):
        estimation.choose_cells(
            args["observed_mask"], args["budget"], np.random.default_rng(0), args["strategy"]
        )


def test_the_chooser_refuses_an_estimate_of_another_shape():
    correct, _, _ = rasch(14, phrasings=5, instances=6)
    est = estimation.estimate_spread(all_cells(correct), correct.shape)
    with pytest.raises(ValueError, match="mask is"):
        estimation.choose_cells(np.zeros((6, 5), dtype=bool), 2, np.random.default_rng(0), "adaptive", est)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"covariates": np.zeros((4, 2))}, "covariates"),
        ({"instance_effects": np.zeros(7)}, "instance_effects"),
        ({"cells": [[0, 6, 1]]}, "outside"),
        ({"cells": [[5, 0, 1]]}, "outside"),
        ({"cells": [[0, 0, 1], [0, 0, 0]]}, "more than once"),
        ({"cells": []}, "non-empty"),
        ({"cells": [[0, 1]]}, "triples"),
        ({"shape": (5,)}, "shape"),
        ({"draws": 1}, "draws"),
    ],
)
def test_the_estimator_refuses_input_that_does_not_match_the_shape(change, message):
    args = {"cells": [[0, 0, 1], [1, 2, 0]], "shape": (5, 6), **change}
    cells, shape = args.pop("cells"), args.pop("shape")
    with pytest.raises(ValueError, match=message):
        estimation.estimate_spread(cells, shape, **args)


def test_a_query_that_answers_the_wrong_number_of_cells_is_refused():
    with pytest.raises(ValueError, match="query returned"):
        estimation.budgeted_estimate(lambda cells: [True], (5, 6), 10, np.random.default_rng(0))
    with pytest.raises(ValueError, match="budget must be"):
        estimation.budgeted_estimate(lambda cells: [], (5, 6), 31, np.random.default_rng(0))
