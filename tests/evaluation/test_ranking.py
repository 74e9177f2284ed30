"""Rank intervals and tie groups (evaluation/stats/ranking.py) on boards whose differences are and are not real."""

import numpy as np
import pytest

from evaluation.stats import metrics, ranking


def avgp_draws(correct: np.ndarray, seed: int = 7, samples: int = 1000) -> np.ndarray:
    """A row's AvgP bootstrap draws as metrics.replicate_figures draws them (same seed and shape for every
    row, so paired), AvgP alone."""
    k, n = correct.shape
    rows, counts = metrics.two_way_draws(np.random.default_rng(seed), samples, k, n)
    return metrics.drawn_row_means(correct, rows, counts).mean(axis=1)


def standings(points, draws, **kw):
    return ranking.standings(points, ranking.separable(np.asarray(points, dtype=float), draws), **kw)


def board(accuracies: list[float], k: int = 10, n: int = 200, seed: int = 0):
    """Rows scored on the same k phrasings x n instances; a row's cell is right with its accuracy, plus a
    per-phrasing effect shared by every row (some phrasings are harder for all)."""
    rng = np.random.default_rng(seed)
    phrasing = rng.normal(0, 0.08, size=(k, 1))
    rows = [(rng.random((k, n)) < np.clip(a + phrasing, 0, 1)) for a in accuracies]
    points = [float(c.mean()) for c in rows]
    return points, np.stack([avgp_draws(c) for c in rows])


def test_clear_leader_and_a_tie_below():
    points, draws = board([0.85, 0.60, 0.61])
    a, b, c = standings(points, draws)
    assert (a.rank_low, a.rank_high, a.tie_group) == (1, 1, 1)
    assert b.tie_group == c.tie_group == 2
    assert (b.rank_low, b.rank_high) == (2, 3) and (c.rank_low, c.rank_high) == (2, 3)
    assert b.rank_interval == "2–3" and a.rank_interval == "1"
    assert a.as_dict() == {"rank_interval": [1, 1], "tie_group": 1}


def test_identical_rows_are_never_separable():
    rng = np.random.default_rng(1)
    correct = rng.random((8, 100)) < 0.7
    draws = np.stack([avgp_draws(correct)] * 3)
    points = [float(correct.mean())] * 3
    assert not ranking.separable(np.array(points), draws).any()
    assert {s.tie_group for s in standings(points, draws)} == {1}
    assert all((s.rank_low, s.rank_high) == (1, 3) for s in standings(points, draws))


def test_a_chain_of_clear_steps_orders_every_row():
    points, draws = board([0.9, 0.7, 0.5, 0.3], n=400)
    found = standings(points, draws)
    assert [(s.rank_low, s.rank_high, s.tie_group) for s in found] == [
        (1, 1, 1),
        (2, 2, 2),
        (3, 3, 3),
        (4, 4, 4),
    ]


def test_groups_are_cut_from_the_leader_and_follow_the_points_not_the_input_order():
    # top ~ mid and mid ~ low (differences within noise), but low moves with top draw for draw, so top and
    # low are separable: mid stays in top's group, low leads the second.
    e1, e2 = np.random.default_rng(0).normal(0, 0.03, (2, 1000))
    points = np.array([0.60, 0.70, 0.65])  # low, top, mid: given unsorted
    draws = np.stack([0.60 + e1, 0.70 + e1, 0.65 + e2])
    apart = ranking.separable(points, draws)
    assert apart[0, 1] and not apart[1, 2] and not apart[0, 2]  # the premise
    low, top, mid = standings(points, draws)
    assert (top.tie_group, mid.tie_group, low.tie_group) == (1, 1, 2)
    assert (top.rank_low, top.rank_high) == (1, 2)
    assert (mid.rank_low, mid.rank_high) == (1, 3)
    assert (low.rank_low, low.rank_high) == (2, 3)


def test_rows_without_a_figure_get_no_standing():
    points, draws = board([0.8, 0.5])
    rows = [points[0], None, points[1]]
    found = ranking.standings(
        rows, ranking.separable(np.array([points[0], 0.0, points[1]]), draws[[0, 0, 1]])
    )
    assert found[1] is None
    assert found[0].tie_group == 1 and found[2].tie_group == 2
    assert (found[2].rank_low, found[2].rank_high) == (2, 2)


def test_draws_with_nan_are_left_out_of_the_pair():
    points, draws = board([0.85, 0.55])
    draws[1, :100] = np.nan
    a, b = standings(points, draws)
    assert a.tie_group == 1 and b.tie_group == 2


@pytest.mark.parametrize("rows", [5, 12])
def test_equal_rows_split_a_board_at_most_about_alpha_of_the_time(rows):
    """Family-wise error under the null: rows with the same true accuracy (each board drawn afresh) are cut
    into more than one group on at most ~5% of boards (Bonferroni makes it conservative)."""
    boards, split = 120, 0
    for seed in range(boards):
        points, draws = board([0.65] * rows, k=8, n=80, seed=seed)
        split += len({s.tie_group for s in standings(points, draws)}) > 1
    assert split / boards <= 0.08, f"{split} of {boards} null boards were split"


def test_critical_z_grows_with_the_board():
    assert ranking.critical_z(2) == pytest.approx(1.959964, abs=1e-5)
    assert ranking.critical_z(10) > ranking.critical_z(3) > ranking.critical_z(2)


def test_lower_is_better_reverses_the_order_not_the_groups():
    points, draws = board([0.85, 0.60, 0.61])
    apart = ranking.separable(np.array(points), draws)
    a, b, c = ranking.standings(points, apart, descending=False)
    assert b.tie_group == c.tie_group == 1 and (b.rank_low, b.rank_high) == (1, 2)
    assert (a.rank_low, a.rank_high, a.tie_group) == (3, 3, 2)


def test_the_draws_here_are_the_apps_avgp_replicates():
    correct = np.random.default_rng(3).random((6, 50)) < 0.6
    reps = metrics.replicate_figures(np.random.default_rng(7), 1000, np.zeros(6, bool), correct)
    np.testing.assert_allclose(avgp_draws(correct), reps["avgp"])
