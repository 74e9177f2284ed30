"""Every robustness figure, declared once: its name, label, unit, definition, whether it is a spread figure,
and one batched formula. Pure numpy, no Django.

A formula works on `Draws`: per-phrasing accuracies on D rows at once, (D, K). The same formula gives the
point value (one row: the measured accuracies), the bootstrap's replicates (metrics.replicate_figures: a row
per replicate) and the estimator's posterior draws (adaptive_estimates.TaskEstimate.figure_draws: a row per draw), so
a figure's arithmetic is written in one place. A formula returns (D,) values, NaN where the figure is
undefined on a row; it may read the figures declared before it (`done`), as CPS reads MaxP and AvgP.

Figures are computed, stored (evaluation/stats/replicates.py packs them under these names) and listed on the pages,
the API, the exports and the comparison in FIGURES order. Adding a figure is one declaration here and its
test; stored summaries computed under another list of names read as stale and are recomputed
(aggregates.figures_refresh_stale, the `refresh_figures` command). `docs/figures.md` is generated from this
module (`manage.py refresh_figures --docs`), and a test checks that it is current.

Definitions: ../shared/DESIGN.md, "Robustness metrics"; the instance-level sensitivity figures (Consistency,
Consistency rate, POSIX): docs/sensitivity.md. Quantiles interpolate linearly between order statistics
(numpy's default). Figures are fractions but for POSIX (nats per token); pages show "pct" figures as
percentages, "pp" figures in percentage points and "ratio" figures as plain numbers.

Pair figures. Consistency, Consistency rate and POSIX average, per instance, a quantity over the pairs of
different phrasings. A bootstrap row draws K phrasing slots with replacement, so two slots may hold the same
phrasing: such a pair is left out (it compares a prompt with itself), and each instance's average is over
the row's `distinct_pairs` ordered pairs of slots holding different phrasings. Counting those pairs as
agreeing instead would pull every replicate towards "no sensitivity" by about 1/K of the figure (a third
with three phrasings), so the intervals would sit beside the point value rather than around it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

Unit = Literal["pct", "pp", "ratio"]
# What a formula reads besides the accuracies of the phrasings it is given.
Needs = Literal["accuracies", "instances", "observed"]


@dataclass(frozen=True)
class Draws:
    """The inputs of every formula, on D rows at once."""

    accuracy: np.ndarray  # (D, K): per-phrasing accuracy A_p, one row per draw (a point value is one row)
    # Which of the K phrasings are observed (tuned on) and unobserved (neither observed nor a benchmark
    # default): (K,) when every row has the same phrasings (a point value, posterior draws), (D, K) when each
    # row drew its own (the bootstrap).
    observed: np.ndarray
    unobserved: np.ndarray
    # (D, N): a_x, the share of the K phrasings right on instance x, per row; None without per-instance data
    # (published results, posterior draws).
    agreement: np.ndarray | None = None
    # (D, N): how many times each instance was drawn (the bootstrap); None: every instance once.
    instance_weights: np.ndarray | None = None
    # (D, N): the Gini impurity of the options predicted on instance x, 1 - sum_o p_o^2, p_o the share of
    # the row's K phrasing slots that predict option o: the chance that two slots drawn with replacement
    # predict different options. None without predicted options (published results, posterior draws).
    option_impurity: np.ndarray | None = None
    # (D, N): POSIX's sum over the row's ordered pairs of phrasing slots (i, j) of
    # |log P(y_j | x_i) - log P(y_j | x_j)| / L(y_j), y_j the option predicted under phrasing j (pair_terms).
    # None without log-likelihoods (published results, posterior draws, batch-calibrated scores).
    posix_sum: np.ndarray | None = None
    # (D,): the ordered pairs of the row's K slots that hold two different phrasings, K^2 - sum_p w_p^2 with
    # w_p the times phrasing p was drawn; None: K (K - 1), every phrasing once (see "Pair figures" above).
    distinct_pairs: np.ndarray | None = None

    @classmethod
    def point(
        cls,
        accuracies,
        observed=None,
        unobserved=None,
        correct: np.ndarray | None = None,
        predicted: np.ndarray | None = None,
        posix_terms: np.ndarray | None = None,
    ) -> Draws:
        """One row: measured accuracies; with a correctness matrix `correct[k, x]` its agreement, with the
        predicted options `predicted[k, x]` their impurity, with POSIX's pair terms `posix_terms[i, j, x]`
        (pair_terms) their sum per instance."""
        acc = np.asarray(accuracies, dtype=float)[None, :]
        none = np.zeros(acc.shape[1], dtype=bool)
        agreement = impurity = posix_sum = None
        if correct is not None:
            agreement = np.asarray(correct, dtype=float).mean(axis=0)[None, :]
        if predicted is not None:
            impurity = option_impurity(np.ones((1, acc.shape[1])), predicted)
        if posix_terms is not None:
            posix_sum = np.asarray(posix_terms, dtype=float).sum(axis=(0, 1))[None, :]
        return cls(
            acc,
            none if observed is None else np.asarray(observed, dtype=bool),
            none if unobserved is None else np.asarray(unobserved, dtype=bool),
            agreement,
            option_impurity=impurity,
            posix_sum=posix_sum,
        )

    @property
    def rows(self) -> int:
        return self.accuracy.shape[0]

    @property
    def phrasings(self) -> int:
        return self.accuracy.shape[1]

    def undefined(self) -> np.ndarray:
        return np.full(self.rows, np.nan)

    def pairs(self) -> np.ndarray:
        """(D, 1): each row's ordered pairs of slots holding different phrasings (0 where it has none)."""
        k = self.phrasings
        if self.distinct_pairs is None:
            return np.full((self.rows, 1), float(k * (k - 1)))
        return np.asarray(self.distinct_pairs, dtype=float)[:, None]

    def instance_mean(self, values: np.ndarray) -> np.ndarray:
        """(D,): the mean over instances of per-instance values (D, N), each instance counted as often as the
        row drew it."""
        if self.instance_weights is None:
            return values.mean(axis=1)
        # Drawing instances with replacement is weighting them by how often each was drawn.
        return (values * self.instance_weights).sum(axis=1) / values.shape[1]


def option_impurity(slot_counts: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """(D, N): 1 - sum_o p_o^2 per row and instance, p_o the share of the row's phrasing slots predicting
    option o, for predicted options `predicted[k, x]` (indices, stable per instance) and `slot_counts[d, k]`,
    the times row d drew phrasing k (ones: every phrasing once)."""
    predicted = np.asarray(predicted, dtype=int)
    counts = np.asarray(slot_counts, dtype=float)
    total = counts.sum(axis=1, keepdims=True)
    squares = np.zeros((counts.shape[0], predicted.shape[1]))
    for option in np.unique(predicted):
        share = (counts @ (predicted == option).astype(float)) / total  # (D, N); float: a BLAS product
        squares += share**2
    return 1 - squares


def pair_terms(logliks: np.ndarray, lengths: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """POSIX's terms (Chatterjee et al. 2024, the paper's Definition 3), (K, K, N): for phrasings i, j and
    instance x, |log P(y_j | x_i) - log P(y_j | x_j)| / L(y_j), with y_j the option predicted under phrasing
    j, log P(. | x_i) the summed log-likelihood of that option's tokens under phrasing i (`logliks[i, x, o]`,
    padded with NaN past an instance's options) and L(y_j) its length in tokens under phrasing j
    (`lengths[j, x, o]`). Zero where i = j."""
    ll = np.asarray(logliks, dtype=float)
    size = np.asarray(lengths, dtype=float)
    chosen = np.asarray(predicted, dtype=int)  # (K, N): y_j per phrasing j
    columns = np.arange(chosen.shape[1])[None, :]
    under_i = ll[:, columns, chosen]  # (K_i, K_j, N): log P(y_j | x_i)
    own = ll[np.arange(chosen.shape[0])[:, None], columns, chosen]  # (K_j, N): log P(y_j | x_j)
    length = size[np.arange(chosen.shape[0])[:, None], columns, chosen]  # (K_j, N): L(y_j)
    return np.abs(under_i - own[None, :, :]) / length[None, :, :]


# --- Per-instance sensitivity: the pair figures' per-instance values (D, N), None without their data -------


def instance_flip_rate(d: Draws) -> np.ndarray | None:
    """ProSA's per-instance PromptSensiScore S_x on correctness: the share of pairs of different phrasings
    that differ in correctness, 2 K^2 a_x (1 - a_x) / pairs (= k (K - k) / C(K, 2) for every phrasing once,
    k of the K right)."""
    if d.agreement is None or d.phrasings < 2:
        return None
    k = d.phrasings
    return 2 * k * k * d.agreement * (1 - d.agreement) / d.pairs()


def instance_consistency_rate(d: Draws) -> np.ndarray | None:
    """SCORE's per-instance consistency rate: the share of pairs of different phrasings that predict the same
    option, 1 - K^2 g_x / pairs with g_x the option impurity (= (K s - 1) / (K - 1), s = sum_o p_o^2, for
    every phrasing once)."""
    if d.option_impurity is None or d.phrasings < 2:
        return None
    k = d.phrasings
    return 1 - k * k * d.option_impurity / d.pairs()


def instance_posix(d: Draws) -> np.ndarray | None:
    """POSIX's per-instance psi_x: the mean over ordered pairs of different phrasings of the pair terms."""
    if d.posix_sum is None or d.phrasings < 2:
        return None
    return d.posix_sum / d.pairs()


Formula = Callable[[Draws, Mapping[str, np.ndarray]], np.ndarray]


@dataclass(frozen=True)
class Figure:
    name: str  # the key in stored figures, the API and the exports
    label: str  # the column heading
    unit: Unit
    definition: str  # one sentence: the headings' tooltip, docs/figures.md
    # A figure about the spread across phrasings: undefined ("n/a") on a task with fewer phrasings than the
    # minimum, since one or two phrasings give Std 0 and Consistency 100 whatever the model does.
    spread: bool
    formula: Formula
    needs: Needs = "accuracies"
    # Listed as a table column, in the exports and in comparisons (the quartiles only draw the box plots).
    column: bool = True


# --- Formulas that are more than one line ---------------------------------------------------------------


def _instance_average(per_instance: Callable[[Draws], np.ndarray | None]) -> Formula:
    """A pair figure: the mean over instances of a per-instance value; undefined with fewer than two
    phrasings, without its per-instance data or with no instance."""

    def formula(d: Draws, done: Mapping[str, np.ndarray]) -> np.ndarray:
        values = per_instance(d)
        if values is None or values.shape[1] == 0:
            return d.undefined()
        return d.instance_mean(values)

    return formula


def _consistency(d: Draws, done: Mapping[str, np.ndarray]) -> np.ndarray:
    """1 - PSS: 1 - mean over instances of ProSA's per-instance sensitivity (instance_flip_rate), which is
    2 a_x (1 - a_x) K / (K - 1) for every phrasing once; undefined with fewer than two phrasings or no
    instance data."""
    return 1 - _instance_average(instance_flip_rate)(d, done)


def _mean_over(which: Literal["observed", "unobserved"]) -> Formula:
    """Mean accuracy over the observed or the unobserved phrasings, NaN on a row with none. With the same
    phrasings on every row it averages those columns; with a mask per row (the bootstrap's drawn
    phrasings), it sums the row's chosen accuracies and divides by their count."""

    def formula(d: Draws, done: Mapping[str, np.ndarray]) -> np.ndarray:
        chosen = np.asarray(getattr(d, which), dtype=bool)
        if chosen.ndim == 1:
            return d.accuracy[:, chosen].mean(axis=1) if chosen.any() else d.undefined()
        count = chosen.sum(axis=1)
        return np.where(count > 0, (d.accuracy * chosen).sum(axis=1) / count, np.nan)

    return formula


def _pdr(d: Draws, done: Mapping[str, np.ndarray]) -> np.ndarray:
    obs, unobs = done["observed_avgp"], done["unobserved_avgp"]
    return np.where(obs > 0, 1 - unobs / obs, np.nan)


FIGURES: tuple[Figure, ...] = (
    Figure(
        "avgp",
        "AvgP",
        "pct",
        "Mean accuracy over the phrasings (macro-averaged over tasks).",
        spread=False,
        formula=lambda d, done: d.accuracy.mean(axis=1),
    ),
    Figure(
        "std",
        "Std",
        "pp",
        "Standard deviation of per-phrasing accuracy (population), in points.",
        spread=True,
        formula=lambda d, done: d.accuracy.std(axis=1),
    ),
    Figure(
        "min",
        "Min",
        "pct",
        "Accuracy of the worst phrasing.",
        spread=True,
        formula=lambda d, done: d.accuracy.min(axis=1),
    ),
    Figure(
        "q10",
        "Q10",
        "pct",
        "10th percentile of per-phrasing accuracy: how the bad phrasings do.",
        spread=True,
        formula=lambda d, done: np.percentile(d.accuracy, 10, axis=1),
    ),
    Figure(
        "q25",
        "Q25",
        "pct",
        "25th percentile (first quartile) of per-phrasing accuracy: the bottom of the box plots' boxes.",
        spread=True,
        formula=lambda d, done: np.percentile(d.accuracy, 25, axis=1),
        column=False,
    ),
    Figure(
        "median",
        "Median",
        "pct",
        "Median per-phrasing accuracy.",
        spread=True,
        formula=lambda d, done: np.median(d.accuracy, axis=1),
    ),
    Figure(
        "q75",
        "Q75",
        "pct",
        "75th percentile (third quartile) of per-phrasing accuracy: the top of the box plots' boxes.",
        spread=True,
        formula=lambda d, done: np.percentile(d.accuracy, 75, axis=1),
        column=False,
    ),
    Figure(
        "maxp",
        "MaxP",
        "pct",
        "Accuracy of the best phrasing.",
        spread=True,
        formula=lambda d, done: d.accuracy.max(axis=1),
    ),
    Figure(
        "spread",
        "Spread",
        "pp",
        "Best minus worst phrasing's accuracy (MaxP - Min), in points.",
        spread=True,
        formula=lambda d, done: done["maxp"] - done["min"],
    ),
    Figure(
        "cps",
        "CPS",
        "pct",
        "Combined performance score, MaxP x (1 - (MaxP - AvgP)): a high best phrasing, penalised by its "
        "distance from the average (Mizrahi et al., TACL 2024).",
        spread=True,
        formula=lambda d, done: done["maxp"] * (1 - (done["maxp"] - done["avgp"])),
    ),
    Figure(
        "consistency",
        "Consistency",
        "pct",
        "1 - PSS, ProSA's PromptSensiScore on correctness (Zhuo et al., EMNLP Findings 2024): 1 - the mean "
        "over instances of the share of pairs of phrasings that differ in correctness, 2 a (1 - a) K / "
        "(K - 1) with a the share of the K phrasings right on it (100 = every phrasing agrees). Needs "
        "per-instance results.",
        spread=True,
        formula=_consistency,
        needs="instances",
    ),
    Figure(
        "consistency_rate",
        "Consistency rate",
        "pct",
        "SCORE's Consistency Rate (Nalbandyan et al., NAACL 2025): the mean over instances of the share of "
        "pairs of phrasings that predict the same option, whether right or wrong (100 = every phrasing "
        "gives the same answer). At most Consistency. Needs per-instance predictions.",
        spread=True,
        formula=_instance_average(instance_consistency_rate),
        needs="instances",
    ),
    Figure(
        "posix",
        "POSIX",
        "ratio",
        "Prompt sensitivity index (Chatterjee et al., EMNLP Findings 2024), in nats per token: the mean over "
        "instances and ordered pairs of phrasings (i, j) of |log P(y_j | x_i) - log P(y_j | x_j)| / L(y_j), "
        "y_j the option predicted under phrasing j and L its length in tokens (0 = the answers' "
        "likelihoods do not move with the wording). Needs the options' log-likelihoods (none for published "
        "results or batch-calibrated scores).",
        spread=True,
        formula=_instance_average(instance_posix),
        needs="instances",
    ),
    Figure(
        "observed_avgp",
        "Observed",
        "pct",
        "AvgP on phrasings from collections the model was tuned on.",
        spread=False,
        formula=_mean_over("observed"),
        needs="observed",
    ),
    Figure(
        "unobserved_avgp",
        "Unobserved",
        "pct",
        "AvgP on phrasings it was not tuned on (benchmark defaults excluded).",
        spread=False,
        formula=_mean_over("unobserved"),
        needs="observed",
    ),
    Figure(
        "gap",
        "Gap",
        "pp",
        "Observed minus Unobserved AvgP, in points: the cost of new wordings.",
        spread=False,
        formula=lambda d, done: done["observed_avgp"] - done["unobserved_avgp"],
        needs="observed",
    ),
    Figure(
        "pdr",
        "PDR",
        "ratio",
        "Performance drop rate, 1 - Unobserved / Observed.",
        spread=False,
        formula=_pdr,
        needs="observed",
    ),
)


# --- Reading the registry ---------------------------------------------------------------------------------
# Functions rather than constants, so that everything reads FIGURES as it is when called (a test may add a
# figure for its duration).


def names() -> tuple[str, ...]:
    """Every figure's name, in FIGURES order (the order stored replicates keep)."""
    return tuple(figure.name for figure in FIGURES)


def spread_names() -> tuple[str, ...]:
    return tuple(figure.name for figure in FIGURES if figure.spread)


def columns() -> tuple[Figure, ...]:
    """The figures the tables, the exports and the comparisons list."""
    return tuple(figure for figure in FIGURES if figure.column)


def get(name: str) -> Figure:
    for figure in FIGURES:
        if figure.name == name:
            return figure
    raise KeyError(f"No figure named {name!r}; the figures are {', '.join(names())}.")


def compute(
    draws: Draws, *, min_phrasings: int = 0, needs: tuple[Needs, ...] | None = None
) -> dict[str, np.ndarray]:
    """Every figure (or those whose inputs are among `needs`) on every row of `draws`, (D,) each, NaN where
    undefined: the spread figures too when there are fewer than `min_phrasings` phrasings."""
    done: dict[str, np.ndarray] = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        for figure in FIGURES:
            if needs is None or figure.needs in needs:
                done[figure.name] = figure.formula(draws, done)
    if draws.phrasings < min_phrasings:
        done.update({name: draws.undefined() for name in spread_names() if name in done})
    return done


def point(values: Mapping[str, np.ndarray]) -> dict[str, float | None]:
    """The one row of `compute(Draws.point(...))` as numbers, None where undefined."""
    out: dict[str, float | None] = {}
    for name, value in values.items():
        number = float(value[0])
        out[name] = None if np.isnan(number) else number
    return out


def describe() -> list[dict]:
    """Every figure's name, label, unit, definition and whether it is a spread figure (the API's `figures`)."""
    return [
        {"name": f.name, "label": f.label, "unit": f.unit, "definition": f.definition, "spread": f.spread}
        for f in FIGURES
    ]


UNIT_WORDS = {"pct": "in percent", "pp": "in percentage points", "ratio": "as a plain number"}


def markdown() -> str:
    """docs/figures.md: the definitions as the pages show them, generated from FIGURES."""
    lines = [
        "# Robustness figures",
        "",
        "Generated from `evaluation/stats/figure_registry.py` by `manage.py refresh_figures --docs`; do not edit by",
        "hand (a test checks that this file is current). A_p is the accuracy of phrasing p over the task's",
        "evaluation sample; every figure is computed per model variant and task, and a benchmark figure is the",
        "plain mean over its tasks (a benchmark's Std is the mean of its tasks' Stds). Quantiles interpolate",
        "linearly between order statistics. Spread figures need a minimum number of phrasings on a task",
        "(`SPREAD_MIN_PHRASINGS`), else they are n/a. 95% intervals come from a two-way bootstrap over",
        "phrasings and instances (phrasings only for published results), or, for estimated figures, from the",
        "estimator's posterior draws: the same formula serves all three. Consistency, Consistency rate and",
        "POSIX, their per-instance values and the tasks' most fragile instances: docs/sensitivity.md.",
        "",
        "| Name | Label | Shown | Spread figure | Listed in tables | Definition |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for figure in FIGURES:
        cell = figure.definition.replace("|", "\\|")  # a pipe in a definition (POSIX's |x|) ends a cell
        lines.append(
            f"| `{figure.name}` | {figure.label} | {UNIT_WORDS[figure.unit]} | "
            f"{'yes' if figure.spread else 'no'} | {'yes' if figure.column else 'no'} | {cell} |"
        )
    return "\n".join(lines) + "\n"
