"""Budgeted evaluation: estimate a model's spread across phrasings from a fraction of the cells of its
correctness matrix `correct[phrasing, instance]`, as pure functions (numpy, scipy, scikit-learn; no Django).

The model follows PromptEval (Polo et al., NeurIPS 2024): a Rasch-style logistic model

    P(correct[p, i]) = sigmoid(c + theta_p + beta_i),   theta_p = x_p . gamma + u_p

with a phrasing effect (optionally explained in part by phrasing covariates x_p, e.g. sentence embeddings),
an instance effect (optionally anchored on effects measured on other models) and Gaussian priors on every
effect. It is fitted by scikit-learn's L2-regularised LogisticRegression (Newton-Cholesky solver) on
one-hot phrasing and instance columns: scaling a block of columns by s turns the common L2 penalty into a
prior N(0, s^2) on that block's effects, so each block gets its own prior. The prior variances are learnt
from the data between fits (empirical Bayes, with a weak hyperprior; see _update), so how much to shrink
is not a fixed setting.

Estimates. Phrasing p's accuracy is the mean over *all* instances of sigmoid(c + theta_p + beta_i), with
the observed cells plugged in with their true values (as PromptEval does). The figures (AvgP, Std, Q10,
Median, Q90, Spread, ...; the definitions of metrics.py, plus Q90 with the same interpolation) are *not*
computed from those point estimates: shrunk estimates are closer together than the truth, so their Q10 would
be too high and their Std too low. Instead each figure is its posterior mean under a parametric draw:

- draw the effects from the Laplace approximation of the posterior (a Gaussian at the fitted values with
  the inverse Hessian of the penalised log-likelihood as covariance);
- draw every unobserved cell as a Bernoulli outcome at its drawn probability, keep the observed cells;
- shift each phrasing's drawn accuracies so that their mean is its point estimate: the draws supply the
  uncertainty, the plug-in estimate the level (the Laplace Gaussian is symmetric where the posterior of
  a logit is not, and the plug-in estimate is the one calibrated on the observed cells);
- compute the figures on each completed matrix; the point is their mean, the interval 2.5-97.5%.

Why a parametric draw rather than a bootstrap: the quantity of interest is the exhaustive figure on *these*
phrasings and instances (what scoring every cell would give), so what is uncertain is only the unobserved
cells, and the draw describes exactly that: with every cell observed the intervals have zero width and
the figures equal metrics.py's. The Bernoulli step matters with ~100 instances, where a phrasing's
accuracy carries ~5 points of binomial noise that the mean of probabilities would leave out. (metrics.py's
two-way bootstrap answers another question: how the figures would vary over other phrasings and
instances.) The draw ignores the uncertainty of the prior variances themselves, so intervals run slightly
narrow when few cells are observed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import sparse
from scipy.linalg import cho_solve, solve_triangular
from scipy.special import expit
from threadpoolctl import threadpool_limits

from evaluation.stats import figure_registry
from evaluation.stats.metrics import SEED

DRAWS = 500  # posterior draws for the figures and intervals
ROUND_DRAWS = 100  # fewer draws for the intermediate fits of adaptive rounds: only widths are needed there
EM_STEPS = 30
EM_TOLERANCE = 0.02  # stop when no prior standard deviation moves by more than 2%
# A weak hyperprior on each block's prior variance, worth PRIOR_WEIGHT effects at PRIOR_SD: with few cells
# the empirical-Bayes variance can collapse to zero (every phrasing alike), which would hide the spread.
# 0.2 logits for phrasings: the study's published per-phrasing accuracies (../shared/data/paper_results_csv)
# have a median Std of 3.3 points per task, about 0.15-0.2 logits. Covariates get less, so that
# uninformative ones add little spurious spread.
PRIOR_SD = {"phrasing": 0.2, "instance": 1.0, "covariate": 0.1}
PRIOR_WEIGHT = 2.0
# With instance effects from other models, the instance columns fit only this model's departures from
# them, expected small.
DEPARTURE_SD = 0.3
INITIAL_SD = {"phrasing": 0.5, "instance": 1.0, "covariate": 0.5}
SHARED_SCALE = 10.0  # prior sd of the weight on shared instance effects: practically unpenalised
DRAW_CELLS = 4_000_000  # cells drawn per chunk, to bound memory on big matrices
STRATEGIES = ("adaptive", "uniform")


def figures_of(accuracies: Sequence[float]) -> dict[str, float]:
    """figures_by_row of one row of accuracies, as numbers: metrics.spread_figures plus Q90."""
    return {name: float(values[0]) for name, values in figures_by_row([accuracies]).items()}


@dataclass(frozen=True)
class SpreadEstimate:
    """Estimates for one model variant on one task from part of its cells."""

    shape: tuple[int, int]  # (phrasings, instances) of the whole matrix
    observed: int  # cells observed
    accuracy: np.ndarray  # (P,) per-phrasing accuracy, observed cells plugged in
    accuracy_ci: np.ndarray  # (P, 2) 95% interval of each phrasing's exhaustive accuracy
    figures: dict[str, float]  # figures_of names -> posterior mean
    ci: dict[str, tuple[float, float]]  # figure -> 95% interval
    theta: np.ndarray  # (P,) phrasing logits at an average instance: c + x_p . gamma + u_p
    beta: np.ndarray  # (I,) instance effects (including the shared part when given)
    prior_sd: dict[str, float]  # fitted prior standard deviation of each block of effects
    # (D, P) per-phrasing accuracies of the completed matrices the figures are summarised from: figures on a
    # subset of phrasings (one phrasing set) or averaged over tasks draw by draw start from them. One row,
    # the exhaustive accuracies, when every cell is observed.
    accuracy_draws: np.ndarray

    @property
    def share(self) -> float:
        return self.observed / (self.shape[0] * self.shape[1])

    def cell_probability(self) -> np.ndarray:
        """(P, I) fitted probability of each cell being correct."""
        return expit(self.theta[:, None] + self.beta[None, :])


# ---- input checks -------------------------------------------------------------------------------------


def _shape(shape) -> tuple[int, int]:
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"shape must be (phrasings, instances), both at least 1; got {shape}.")
    return int(shape[0]), int(shape[1])


def _cells(cells, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(phrasing, instance, correct) triples -> three arrays, checked against the shape."""
    arr = np.asarray(cells)
    if arr.ndim != 2 or arr.shape[1] != 3 or arr.shape[0] == 0:
        raise ValueError("cells must be a non-empty sequence of (phrasing, instance, correct) triples.")
    p, i = arr[:, 0].astype(int), arr[:, 1].astype(int)
    if p.min() < 0 or p.max() >= shape[0] or i.min() < 0 or i.max() >= shape[1]:
        raise ValueError(f"cell indices outside the {shape[0]} x {shape[1]} matrix.")
    if np.unique(p * shape[1] + i).size != p.size:
        raise ValueError("a cell appears more than once.")
    return p, i, arr[:, 2].astype(bool)


def _covariates(covariates, phrasings: int) -> np.ndarray | None:
    """Standardised covariate columns, divided by sqrt(d) so that x_p . gamma has variance ~ sd(gamma)^2."""
    if covariates is None:
        return None
    x = np.asarray(covariates, dtype=float)
    if x.ndim != 2 or x.shape[0] != phrasings:
        raise ValueError(
            f"covariates must be an array of {phrasings} rows (one per phrasing); got {x.shape}."
        )
    sd = x.std(axis=0)
    x = (x[:, sd > 0] - x[:, sd > 0].mean(axis=0)) / sd[sd > 0]  # constant columns say nothing
    return x / math.sqrt(x.shape[1]) if x.shape[1] else None


def _shared(instance_effects, instances: int) -> np.ndarray | None:
    if instance_effects is None:
        return None
    b = np.asarray(instance_effects, dtype=float)
    if b.shape != (instances,):
        raise ValueError(f"instance_effects must have one value per instance ({instances}); got {b.shape}.")
    return b - b.mean()


# ---- fitting --------------------------------------------------------------------------------------------


@dataclass
class _Design:
    """Columns: one-hot phrasings, one-hot instances, covariates, shared instance effects (the last two
    optional). Each effect is its column's scale times a weight with sklearn's unit L2 penalty, so a
    column's scale is the prior standard deviation of its effect."""

    shape: tuple[int, int]
    p: np.ndarray
    i: np.ndarray
    y: np.ndarray
    x: np.ndarray | None
    shared: np.ndarray | None

    def blocks(self) -> dict[str, slice]:
        n_p, n_i = self.shape
        out, at = {"phrasing": slice(0, n_p), "instance": slice(n_p, n_p + n_i)}, n_p + n_i
        if self.x is not None:
            out["covariate"] = slice(at, at + self.x.shape[1])
            at += self.x.shape[1]
        if self.shared is not None:
            out["shared"] = slice(at, at + 1)
        return out

    @cached_property
    def unscaled(self) -> sparse.csr_matrix:
        """The design before scaling, plus two pseudo-cells (one right, one wrong, half weight each) with no
        effects at all: they keep the intercept finite when every observed cell agrees."""
        n_p, n_i = self.shape
        rows, ones = np.arange(self.p.size), np.ones(self.p.size)
        parts = [
            sparse.csr_matrix((ones, (rows, self.p)), shape=(rows.size, n_p)),
            sparse.csr_matrix((ones, (rows, self.i)), shape=(rows.size, n_i)),
        ]
        if self.x is not None:
            parts.append(sparse.csr_matrix(self.x[self.p]))
        if self.shared is not None:
            parts.append(sparse.csr_matrix(self.shared[self.i][:, None]))
        cells = sparse.hstack(parts, format="csr")
        return sparse.vstack([cells, sparse.csr_matrix((2, cells.shape[1]))], format="csr")

    def matrix(self, scales: np.ndarray) -> sparse.csr_matrix:
        return self.unscaled.multiply(scales[None, :]).tocsr()

    def targets(self) -> tuple[np.ndarray, np.ndarray]:
        y = np.concatenate([self.y.astype(int), [1, 0]])
        weight = np.concatenate([np.ones(self.y.size), [0.5, 0.5]])
        return y, weight


@dataclass
class _Prior:
    """Prior standard deviation of the effects of each block of columns."""

    sd: dict[str, float]

    def scales(self, design: _Design) -> np.ndarray:
        out = np.empty(design.unscaled.shape[1])
        for name, block in design.blocks().items():
            out[block] = SHARED_SCALE if name == "shared" else self.sd[name]
        return out


@dataclass
class _Fit:
    design: _Design
    prior: _Prior
    mean: np.ndarray  # [intercept, weights...]
    chol: np.ndarray  # lower Cholesky factor of the penalised Hessian (weight space)

    def effects(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Weights (D, 1 + m) -> phrasing logits (D, P) and instance effects (D, I)."""
        blocks, d = self.design.blocks(), self.design
        e = w[:, 1:] * self.prior.scales(d)[None, :]
        theta = w[:, :1] + e[:, blocks["phrasing"]]
        beta = e[:, blocks["instance"]]
        if d.x is not None:
            theta = theta + e[:, blocks["covariate"]] @ d.x.T
        if d.shared is not None:
            beta = beta + e[:, blocks["shared"]] * d.shared[None, :]
        return theta, beta

    def draw(self, rng: np.random.Generator, draws: int) -> np.ndarray:
        """Weights from N(mean, H^-1): H = L L^T, so L^-T z has covariance H^-1."""
        z = rng.standard_normal((self.mean.size, draws))
        return self.mean[None, :] + solve_triangular(self.chol, z, lower=True, trans="T").T


def _logistic(design: _Design, scales: np.ndarray, start: np.ndarray | None) -> np.ndarray:
    """MAP weights [intercept, weights...]; sklearn minimises 1/2 |w|^2 + sum_cells loss (C = 1), the
    intercept unpenalised."""
    # Imported here: scikit-learn (with pandas and scipy.stats behind it) costs a second or more at import, and
    # every process imports this module through the app's tasks; only a fit needs it (tests/core/test_startup.py).
    from sklearn.linear_model import LogisticRegression

    y, weight = design.targets()
    model = LogisticRegression(
        C=1.0, solver="newton-cholesky", tol=1e-8, max_iter=100, warm_start=start is not None
    )
    if start is not None:
        model.coef_, model.intercept_ = start[None, 1:].copy(), start[:1].copy()
    model.fit(design.matrix(scales), y, sample_weight=weight)
    return np.concatenate([model.intercept_, model.coef_[0]])


def _hessian_chol(design: _Design, scales: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Cholesky factor of the penalised log-likelihood's Hessian at the MAP, intercept column first."""
    x = sparse.hstack([np.ones((design.unscaled.shape[0], 1)), design.matrix(scales)], format="csr")
    _, weight = design.targets()
    prob = expit(x @ mean)
    h = (x.T @ x.multiply((weight * prob * (1 - prob))[:, None])).toarray()
    h[np.arange(1, h.shape[0]), np.arange(1, h.shape[0])] += 1.0  # the unit prior on every weight
    h[0, 0] += 1e-6  # the intercept has no prior; keep the factorisation defined
    return np.linalg.cholesky(h)


def _posterior_variances(chol: np.ndarray) -> np.ndarray:
    """Diagonal of H^-1 from its Cholesky factor."""
    inverse = cho_solve((chol, True), np.eye(chol.shape[0]))
    return np.diag(inverse)


def _update(prior: _Prior, design: _Design, mean: np.ndarray, var: np.ndarray) -> _Prior:
    """One empirical-Bayes step: a block's variance becomes the sum of its effects' squares over the number
    of effects the data determine (the sum of 1 - posterior/prior variance; MacKay's update, which has the
    fixed point of EM but gets there in far fewer fits), with the weak hyperprior added."""
    effects = mean[1:] * prior.scales(design)
    sd = dict(prior.sd)
    for name, block in design.blocks().items():
        if name == "shared":
            continue
        determined = max(float(np.sum(1 - var[block])), 0.5)
        target = DEPARTURE_SD if name == "instance" and design.shared is not None else PRIOR_SD[name]
        spread = np.sum(effects[block] ** 2) + PRIOR_WEIGHT * target**2
        sd[name] = float(np.clip(math.sqrt(spread / (determined + PRIOR_WEIGHT)), 1e-3, 5.0))
    return _Prior(sd)


def _fit(design: _Design, start: dict[str, float] | None) -> _Fit:
    """MAP fit, with the priors re-estimated from the data between fits (see _update) until they settle."""
    prior = _Prior({**INITIAL_SD, **(start or {})})
    scales, mean = prior.scales(design), None
    for _ in range(EM_STEPS):
        mean = _logistic(design, scales, mean)
        chol = _hessian_chol(design, scales, mean)
        prior = _update(prior, design, mean, _posterior_variances(chol)[1:])
        new_scales = prior.scales(design)
        moved = float(np.max(np.abs(new_scales / scales - 1)))
        mean[1:] *= scales / new_scales  # the same effects under the new scales: the warm start
        scales = new_scales
        if moved < EM_TOLERANCE:
            break
    mean = _logistic(design, scales, mean)
    return _Fit(design, prior, mean, _hessian_chol(design, scales, mean))


# ---- drawing the unobserved cells -------------------------------------------------------------------------


def _draw_accuracies(fit: _Fit, observed: np.ndarray, observed_right: np.ndarray, draws: int, seed: int):
    """(D, P) phrasing accuracies of matrices completed by posterior draws (observed cells kept)."""
    rng = np.random.default_rng(seed)
    n_p, n_i = fit.design.shape
    theta, beta = fit.effects(fit.draw(rng, draws))
    free = ~observed
    right_so_far = observed_right.sum(axis=1)
    out = np.empty((draws, n_p))
    step = max(1, DRAW_CELLS // (n_p * n_i))
    for start in range(0, draws, step):
        block = slice(start, start + step)
        prob = expit(theta[block, :, None] + beta[block, None, :])
        drawn = (rng.random(prob.shape) < prob) & free[None]
        out[block] = (right_so_far[None] + drawn.sum(axis=2)) / n_i
    return out


def figures_by_row(accuracies: np.ndarray) -> dict[str, np.ndarray]:
    """For each row of a (D, P) array of accuracies (the posterior draws), the registry's figures of
    accuracies alone (figure_registry.compute: the formulas of metrics.py's figures), plus Q90 (linear
    interpolation between order statistics, as there), which adaptive runs watch but pages do not show."""
    a = np.asarray(accuracies, dtype=float)
    none = np.zeros(a.shape[1], dtype=bool)
    figures = figure_registry.compute(figure_registry.Draws(a, none, none), needs=("accuracies",))
    return figures | {"q90": np.percentile(a, 90, axis=1)}


def _summaries(accuracy_draws: np.ndarray) -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
    """Posterior mean and 95% interval of each figure over the draws."""
    figures, ci = {}, {}
    for name, values in figures_by_row(accuracy_draws).items():
        figures[name] = float(values.mean())
        ci[name] = (float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5)))
    return figures, ci


def estimate_spread(
    cells,
    shape: tuple[int, int],
    *,
    covariates=None,
    instance_effects=None,
    draws: int = DRAWS,
    seed: int = SEED,
    prior_sd: dict[str, float] | None = None,
) -> SpreadEstimate:
    """Estimate every phrasing's accuracy and the figures across phrasings from the observed cells.

    cells: (phrasing index, instance index, correct) triples, each cell at most once; shape: (phrasings,
    instances) of the whole matrix; covariates: optional (phrasings, d) array, e.g. sentence embeddings of
    the phrasings; instance_effects: optional (instances,) effects measured on other models (e.g. `beta`
    of their estimates, or logits of their per-instance accuracy), used as a column whose weight is fitted,
    the instance one-hots then fitting only this model's departures from it; prior_sd: where the
    empirical-Bayes steps start (e.g. the previous round's `prior_sd`), which only saves fits."""
    shape = _shape(shape)
    if draws < 2:
        raise ValueError(f"draws must be at least 2; got {draws}.")
    p, i, y = _cells(cells, shape)
    design = _Design(shape, p, i, y, _covariates(covariates, shape[0]), _shared(instance_effects, shape[1]))
    # The matrices are small (a few hundred columns): one BLAS thread is several times faster than
    # threads that contend with each other and with other work on the machine.
    with threadpool_limits(limits=1, user_api="blas"):
        fit = _fit(design, prior_sd)
    observed, right = np.zeros(shape, dtype=bool), np.zeros(shape, dtype=bool)
    observed[p, i], right[p, i] = True, y
    theta, beta = (e[0] for e in fit.effects(fit.mean[None, :]))
    accuracy = np.where(observed, right, expit(theta[:, None] + beta[None, :])).mean(axis=1)
    if observed.all():
        # Nothing left to estimate: exactly metrics.py's exhaustive figures, with zero-width intervals.
        figures = figures_of(accuracy)
        ci = {name: (value, value) for name, value in figures.items()}
        accuracy_ci = np.stack([accuracy, accuracy], axis=1)
        accuracy_draws = accuracy[None, :]
    else:
        accuracy_draws = _recentred(
            _draw_accuracies(fit, observed, right, draws, seed), accuracy, observed, right
        )
        figures, ci = _summaries(accuracy_draws)
        accuracy_ci = np.percentile(accuracy_draws, [2.5, 97.5], axis=0).T
    return SpreadEstimate(
        shape=shape,
        observed=int(p.size),
        accuracy=accuracy,
        accuracy_ci=accuracy_ci,
        figures=figures,
        ci=ci,
        theta=theta,
        beta=beta,
        prior_sd={name: fit.prior.sd[name] for name in design.blocks() if name != "shared"},
        accuracy_draws=accuracy_draws,
    )


def _recentred(
    draws: np.ndarray, accuracy: np.ndarray, observed: np.ndarray, right: np.ndarray
) -> np.ndarray:
    """Each phrasing's draws shifted to average its point estimate (see the module docstring), and kept
    within what its observed cells allow."""
    n_i = observed.shape[1]
    low = right.sum(axis=1) / n_i
    high = low + (~observed).sum(axis=1) / n_i
    return np.clip(draws + (accuracy - draws.mean(axis=0)), low, high)


# ---- choosing cells ----------------------------------------------------------------------------------------


def choose_cells(
    observed_mask,
    budget: int,
    rng: np.random.Generator,
    strategy: str = "adaptive",
    current: SpreadEstimate | None = None,
) -> np.ndarray:
    """`budget` new cells as a (budget, 2) array of (phrasing, instance), never one already observed.

    uniform: cells drawn uniformly among the free ones.
    adaptive without `current`: a balanced design (PromptEval's stratified sampling): one cell at a time,
    to the phrasing with the fewest observed cells, at its free instance with the fewest observed cells
    (ties broken at random), so every phrasing and every instance is covered before any gets a second.
    adaptive with `current` (an estimate from the cells observed so far): each phrasing gets cells in
    proportion to the variance left in its accuracy (its interval width squared), and takes them at its
    least-covered instances. Cells are not picked by their own predicted p(1 - p): that would leave the
    cells the model is sure of unobserved, so any error of the model there goes unchecked, whereas instance
    balance keeps the design stratified, which is also what makes its AvgP better than a uniform sample's."""
    mask = np.asarray(observed_mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"observed_mask must be a 2-D (phrasings, instances) array; got {mask.ndim}-D.")
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}; got {strategy!r}.")
    free = int((~mask).sum())
    if budget < 0 or budget > free:
        raise ValueError(f"budget {budget} is outside 0..{free} (the cells not yet observed).")
    if current is not None and current.shape != mask.shape:
        raise ValueError(f"the estimate is for a {current.shape} matrix, the mask is {mask.shape}.")
    if budget == 0:
        flat = np.empty(0, dtype=int)
    elif strategy == "uniform":
        flat = rng.choice(np.flatnonzero(~mask), size=budget, replace=False)
    elif current is None:
        flat = _balanced(mask, budget, rng)
    else:
        flat = _informative(mask, budget, rng, current)
    return np.stack(np.unravel_index(np.asarray(flat, dtype=int), mask.shape), axis=1)


def _balanced(mask: np.ndarray, budget: int, rng: np.random.Generator) -> np.ndarray:
    taken = mask.copy()
    rows, cols = taken.sum(axis=1).astype(float), taken.sum(axis=0).astype(float)
    rows[taken.all(axis=1)] = np.inf
    picked = []
    for _ in range(budget):
        # Integer counts plus a jitter below 1: the smallest count wins, ties go at random.
        r = int(np.argmin(rows + rng.random(rows.size)))
        c = int(np.argmin(np.where(taken[r], np.inf, cols + rng.random(cols.size))))
        taken[r, c] = True
        rows[r] = np.inf if taken[r].all() else rows[r] + 1
        cols[c] += 1
        picked.append(r * mask.shape[1] + c)
    return np.array(picked, dtype=int)


def _informative(mask: np.ndarray, budget: int, rng: np.random.Generator, current: SpreadEstimate):
    """Phrasings get cells in proportion to the variance left in their accuracy (interval width squared,
    as far as they have free cells; largest remainders round); each takes its free instances with the
    fewest observed cells, so instances stay balanced."""
    width = current.accuracy_ci[:, 1] - current.accuracy_ci[:, 0]
    free = (~mask).sum(axis=1)
    weight = np.where(free > 0, width**2 + 1e-12, 0.0)
    counts = _apportion(budget, weight, free, rng)
    columns = mask.sum(axis=0).astype(float)
    picked = []
    for r in np.flatnonzero(counts):
        key = np.where(mask[r], np.inf, columns + rng.random(columns.size))  # jitter < 1 breaks ties
        chosen = np.argsort(key)[: counts[r]]
        columns[chosen] += 1
        picked.append(r * mask.shape[1] + chosen)
    return np.concatenate(picked)


def _apportion(budget: int, weight: np.ndarray, room: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Integer counts summing to budget, proportional to weight, none above its room (budget <= room.sum())."""
    counts = np.zeros(weight.size, dtype=int)
    while counts.sum() < budget:
        open_ = counts < room
        share = (budget - counts.sum()) * np.where(open_, weight, 0.0) / np.where(open_, weight, 0.0).sum()
        extra = np.minimum(np.floor(share).astype(int), room - counts)
        if extra.sum() == 0:
            # What is left is under one cell per phrasing: to the largest remainders, ties at random.
            order = np.lexsort((rng.random(share.size), -share))
            extra[order[: budget - counts.sum()]] = 1
            extra = np.where(open_, extra, 0)
        counts += extra
    return counts


# ---- the loop: choose, score, estimate ------------------------------------------------------------------------


def budgeted_estimate(
    query: Callable[[np.ndarray], Sequence[bool]],
    shape: tuple[int, int],
    budget: int,
    rng: np.random.Generator,
    *,
    strategy: str = "adaptive",
    rounds: int = 3,
    first_share: float = 0.5,
    covariates=None,
    instance_effects=None,
    draws: int = DRAWS,
    seed: int = SEED,
) -> tuple[SpreadEstimate, np.ndarray]:
    """Spend `budget` cells and estimate. `query(cells)` scores a (k, 2) array of (phrasing, instance)
    cells and returns k booleans. uniform: one draw of `budget` cells. adaptive: a balanced first round of
    `first_share` of the budget, then the rest in `rounds - 1` equal rounds, each chosen from the estimate
    so far. Returns the final estimate and the observed cells as (phrasing, instance, correct) rows."""
    shape = _shape(shape)
    if not 0 < budget <= shape[0] * shape[1]:
        raise ValueError(f"budget must be between 1 and {shape[0] * shape[1]} cells; got {budget}.")
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}; got {strategy!r}.")
    extra = {"covariates": covariates, "instance_effects": instance_effects, "seed": seed}
    mask = np.zeros(shape, dtype=bool)
    observed: list[np.ndarray] = []
    plan = _round_sizes(budget, strategy, rounds, first_share)
    current = None
    for n, size in enumerate(plan):
        if n:
            start = current.prior_sd if current is not None else None
            current = estimate_spread(
                np.concatenate(observed), shape, draws=ROUND_DRAWS, prior_sd=start, **extra
            )
        new = choose_cells(mask, size, rng, strategy, current)
        right = np.asarray(query(new), dtype=bool)
        if right.shape != (size,):
            raise ValueError(f"query returned {right.shape} results for {size} cells.")
        mask[new[:, 0], new[:, 1]] = True
        observed.append(np.column_stack([new, right]))
    cells = np.concatenate(observed)
    start = current.prior_sd if current is not None else None
    return estimate_spread(cells, shape, draws=draws, prior_sd=start, **extra), cells


def _round_sizes(budget: int, strategy: str, rounds: int, first_share: float) -> list[int]:
    if strategy == "uniform" or rounds <= 1:
        return [budget]
    first = max(1, math.ceil(budget * first_share))
    rest = budget - first
    sizes = [first] + [rest // (rounds - 1) + (k < rest % (rounds - 1)) for k in range(rounds - 1)]
    return [s for s in sizes if s > 0]
