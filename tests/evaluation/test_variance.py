"""Variance decomposition of accuracy across prompts (evaluation/stats/variance.py): the estimators are the
mean-square formulas, recover the components of a known model, give ~0 for absent components, their
bootstrap intervals cover the truth in most seeds, and degenerate inputs give defined results.

The known model: binary outcomes from a logistic model with wording, format and wording x format effects
and crossed instance terms (an instance effect, instance x wording and instance x format noise). The true
components are those of the prompts' accuracies on the instance population, m[w, f] = E sigmoid(eta_wf + Z)
with Z the sum of the instance terms, N(0, s^2) for every prompt: computed by Gauss-Hermite quadrature, so
the truth carries no Monte Carlo error of its own."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import expit

from evaluation.stats import variance
from evaluation.stats.variance import COMPONENTS, decompose

WORDING = np.array([0.5, -0.1, 0.0, -0.4])
FORMAT = np.array([0.3, -0.25, -0.05])
INTERACTION = np.array([[0.3, -0.2, -0.1], [-0.3, 0.2, 0.1], [0.1, 0.1, -0.2], [-0.1, -0.1, 0.2]])
SD = {"instance": 1.0, "wording_instance": 0.3, "format_instance": 0.3}


def logits(wording=WORDING, format=FORMAT, interaction=INTERACTION) -> np.ndarray:
    return 0.3 + wording[:, None] + format[None, :] + interaction


def draw(rng: np.random.Generator, eta: np.ndarray, instances: int, sd=SD) -> np.ndarray:
    """One dataset: (wordings, formats, instances) 0/1 outcomes."""
    a, b = eta.shape
    z = (
        rng.normal(0, sd["instance"], instances)
        + rng.normal(0, sd["wording_instance"], (a, 1, instances))
        + rng.normal(0, sd["format_instance"], (1, b, instances))
    )
    return (rng.random((a, b, instances)) < expit(eta[:, :, None] + z)).astype(np.int8)


def truth(eta: np.ndarray, sd=SD) -> dict[str, float]:
    """The components of the prompts' population accuracies (the module docstring's v_wording, ...)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    scale = math.sqrt(sum(s**2 for s in sd.values()))
    m = (expit(eta[:, :, None] + scale * nodes) * weights).sum(axis=2) / weights.sum()
    grand = m.mean()
    inter = m - m.mean(axis=1, keepdims=True) - m.mean(axis=0, keepdims=True) + grand
    return {
        "wording": float(((m.mean(axis=1) - grand) ** 2).mean()),
        "format": float(((m.mean(axis=0) - grand) ** 2).mean()),
        "interaction": float((inter**2).mean()),
    }


def shares_of(values: dict[str, float]) -> dict[str, float]:
    total = sum(values.values())
    return {name: v / total for name, v in values.items()}


def direct_components(y: np.ndarray) -> dict[str, float]:
    """The research notes' formulas written out plainly (fixed-set k^2 estimators, rescaled from divisor
    a - 1 to a, etc.), as the reference for the vectorised implementation."""
    a, b, c = y.shape
    m = y.mean()
    ya, yb, yc = y.mean((1, 2)), y.mean((0, 2)), y.mean((0, 1))
    yab, yac, ybc = y.mean(2), y.mean(1), y.mean(0)
    ms_a = b * c * ((ya - m) ** 2).sum() / (a - 1)
    ms_b = a * c * ((yb - m) ** 2).sum() / (b - 1)
    ms_ab = c * ((yab - ya[:, None] - yb[None, :] + m) ** 2).sum() / ((a - 1) * (b - 1))
    ms_ac = b * ((yac - ya[:, None] - yc[None, :] + m) ** 2).sum() / ((a - 1) * (c - 1))
    ms_bc = a * ((ybc - yb[:, None] - yc[None, :] + m) ** 2).sum() / ((b - 1) * (c - 1))
    r = (
        y
        - yab[:, :, None]
        - yac[:, None, :]
        - ybc[None, :, :]
        + ya[:, None, None]
        + yb[None, :, None]
        + yc[None, None, :]
        - m
    )
    ms_r = (r**2).sum() / ((a - 1) * (b - 1) * (c - 1))
    return {
        "wording": (a - 1) / a * (ms_a - ms_ac) / (b * c),
        "format": (b - 1) / b * (ms_b - ms_bc) / (a * c),
        "interaction": (a - 1) * (b - 1) / (a * b) * (ms_ab - ms_r) / c,
    }


def no_nan(result) -> bool:
    values = [*result.components.values(), *result.raw.values(), *result.shares.values()]
    values += [result.observed_variance, result.noise, *result.truncated.values()]
    values += [x for pair in result.intervals.values() if pair is not None for x in pair]
    values += [v for v in result.mean_squares.__dict__.values()]
    return not any(v is not None and math.isnan(v) for v in values)


def test_the_estimates_are_the_mean_square_formulas_and_add_up_to_the_observed_variance():
    y = draw(np.random.default_rng(1), logits(), 150)
    result = decompose(y, samples=0)
    for name, value in direct_components(y.astype(float)).items():
        assert result.raw[name] == pytest.approx(value, abs=1e-12), name
        assert result.components[name] == pytest.approx(max(value, 0.0), abs=1e-12)
    # Identity: raw components + instance noise = population variance of the per-prompt accuracies.
    assert sum(result.raw.values()) + result.noise == pytest.approx(y.mean(axis=2).var(), abs=1e-12)
    assert result.observed_variance == pytest.approx(y.mean(axis=2).var())
    assert result.noise > 0


def test_a_bootstrap_replicate_is_the_estimate_on_the_resampled_instances():
    """The vectorised bootstrap (weighted sums of per-instance statistics) against recomputation on an
    explicitly resampled array."""
    rng = np.random.default_rng(2)
    y = draw(rng, logits(), 80).astype(float)
    picks = rng.integers(0, 80, (3, 80))
    counts = np.stack([np.bincount(p, minlength=80) for p in picks]).astype(float)
    fast = variance._components(variance._mean_squares(variance._per_instance(y), counts), y.shape)
    for k, p in enumerate(picks):
        for name, value in direct_components(y[:, :, p]).items():
            assert fast[name][k] == pytest.approx(value, abs=1e-12)


def test_it_recovers_the_shares_of_a_known_model():
    """Tolerance 0.1 on each share with 3,000 instances: over 100 datasets of this model the shares' standard
    deviation was about 0.03 (wording 0.029, format 0.026, interaction 0.022), so 0.1 is over three of
    them; the shares here are 0.56, 0.27 and 0.17."""
    eta = logits()
    want = shares_of(truth(eta))
    result = decompose(draw(np.random.default_rng(3), eta, 3000), samples=0)
    for name in COMPONENTS:
        assert result.shares[name] == pytest.approx(want[name], abs=0.1), name
    assert sum(result.shares.values()) == pytest.approx(1.0)


def test_the_estimates_are_unbiased_for_the_components_of_the_instance_population():
    """The mean over 300 datasets of 200 instances is within 4 standard errors of the truth. With this
    model, a formula from the wrong ANOVA (random-prompt estimators, or instances as replicates) is off by
    more than that: the check below measures the random-effects wording estimator's bias."""
    eta = logits()
    want = truth(eta)
    estimates = {name: [] for name in COMPONENTS}
    random_effects_wording = []
    for seed in range(300):
        y = draw(np.random.default_rng(100 + seed), eta, 200)
        result = decompose(y, samples=0)
        for name in COMPONENTS:
            estimates[name].append(result.raw[name])
        ms, (a, b, c) = result.mean_squares, y.shape
        random_effects_wording.append(
            (a - 1) / a * (ms.wording - ms.interaction - ms.wording_instance + ms.residual) / (b * c)
        )
    for name in COMPONENTS:
        values = np.array(estimates[name])
        se = values.std() / math.sqrt(values.size)
        assert abs(values.mean() - want[name]) < 4 * se, name
    values = np.array(random_effects_wording)
    assert abs(values.mean() - want["wording"]) > 4 * values.std() / math.sqrt(values.size)


def test_absent_components_come_out_near_zero():
    """No format effect and no interaction in the model, and no instance x format noise: both components
    are exactly 0 in truth; their estimates are small (under a tenth of the wording's) and often truncated."""
    eta = logits(format=np.zeros(3), interaction=np.zeros((4, 3)))
    sd = {**SD, "format_instance": 0.0}
    assert truth(eta, sd)["format"] == pytest.approx(0.0, abs=1e-15)
    result = decompose(draw(np.random.default_rng(4), eta, 1000, sd), samples=400)
    wording = result.components["wording"]
    assert wording == pytest.approx(truth(eta, sd)["wording"], rel=0.35)
    for name in ("format", "interaction"):
        assert result.components[name] < 0.1 * wording, name
        assert result.intervals[name][0] == 0.0  # the interval reaches the boundary
        assert result.truncated[name] > 0.025
    assert result.shares["wording"] > 0.85


def test_intervals_cover_the_truth_in_most_seeds():
    """A modest check: nominal 95% intervals cover each true component in at least 34 of 40 seeds
    (expected about 38; fewer than 34 has a chance of about 1% at 95% coverage)."""
    eta = logits()
    want = truth(eta)
    hits = dict.fromkeys(COMPONENTS, 0)
    for seed in range(40):
        result = decompose(draw(np.random.default_rng(200 + seed), eta, 200), samples=400, seed=seed)
        for name in COMPONENTS:
            low, high = result.intervals[name]
            hits[name] += low <= want[name] <= high
    assert min(hits.values()) >= 34, hits


def test_the_bootstrap_is_seeded():
    y = draw(np.random.default_rng(5), logits(), 100)
    first, again = decompose(y, samples=200, seed=7), decompose(y, samples=200, seed=7)
    other = decompose(y, samples=200, seed=8)
    assert first.intervals == again.intervals and first.truncated == again.truncated
    assert first.intervals != other.intervals
    assert (first.samples, first.seed, first.level) == (200, 7, 0.95)


def test_one_format_estimates_the_wording_alone():
    y = draw(np.random.default_rng(6), logits()[:, :1], 300)
    for data in (y, y[:, 0, :]):  # (a, 1, c) or (a, c)
        result = decompose(data, samples=100)
        assert result.shape == (4, 1, 300)
        assert result.components["format"] is None and result.components["interaction"] is None
        assert result.shares == {"wording": 1.0, "format": None, "interaction": None}
        assert result.intervals["format"] is None and result.intervals["format_share"] is None
        assert result.components["wording"] > 0
        assert sum(v for v in result.raw.values() if v is not None) + result.noise == pytest.approx(
            result.observed_variance
        )
        assert no_nan(result)


def test_one_wording_estimates_the_format_alone():
    result = decompose(draw(np.random.default_rng(7), logits()[:1, :], 300), samples=100)
    assert result.components["wording"] is None and result.components["interaction"] is None
    assert result.shares["format"] == 1.0
    assert no_nan(result)


def test_one_prompt_has_no_components():
    result = decompose(draw(np.random.default_rng(8), logits()[:1, :1], 50), samples=50)
    assert result.components == dict.fromkeys(COMPONENTS)
    assert result.shares == dict.fromkeys(COMPONENTS)
    assert result.observed_variance == 0.0 and result.noise == 0.0
    assert no_nan(result)


def test_constant_correctness_gives_zero_components_and_no_shares():
    for value in (0, 1):
        result = decompose(np.full((3, 2, 40), value), samples=100)
        assert result.components == dict.fromkeys(COMPONENTS, 0.0)
        assert result.shares == dict.fromkeys(COMPONENTS)
        assert result.intervals["wording"] == (0.0, 0.0)
        assert result.intervals["wording_share"] is None
        assert result.systematic == 0.0
        assert no_nan(result)


def test_prompts_that_differ_only_in_wording_put_everything_on_the_wording():
    y = np.zeros((2, 3, 10))
    y[0] = 1  # wording 0 always right, wording 1 always wrong, whatever the format and instance
    result = decompose(y, samples=50)
    assert result.components["wording"] == pytest.approx(0.25)  # accuracies 1 and 0: variance 1/4
    assert result.components["format"] == 0.0 and result.components["interaction"] == 0.0
    assert result.shares["wording"] == 1.0
    assert result.noise == 0.0


def test_instances_with_a_missing_cell_are_dropped_and_counted():
    y = draw(np.random.default_rng(9), logits(), 60).astype(float)
    with_gaps = y.copy()
    with_gaps[0, 1, 5] = np.nan
    with_gaps[2, 0, 17] = np.nan
    result = decompose(with_gaps, samples=0)
    assert result.shape == (4, 3, 58) and result.dropped_instances == 2
    assert result.raw == decompose(np.delete(y, [5, 17], axis=2), samples=0).raw


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (np.zeros(5), "array"),
        (np.zeros((2, 2, 2, 2)), "array"),
        (np.zeros((0, 2, 5)), "at least one wording"),
        (np.zeros((2, 2, 1)), "at least 2 instances"),
        (np.full((2, 2, 3), np.nan), "at least 2 instances"),
        (np.array([[[0.0, np.inf]]]), "infinite"),
    ],
)
def test_bad_input_is_refused_with_a_clear_error(data, message):
    with pytest.raises(ValueError, match=message):
        decompose(data)


def test_bad_settings_are_refused():
    y = np.zeros((2, 2, 5))
    with pytest.raises(ValueError, match="samples"):
        decompose(y, samples=-1)
    with pytest.raises(ValueError, match="level"):
        decompose(y, level=1.5)
