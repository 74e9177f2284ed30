"""How much of the spread of accuracy across prompts is due to the wording, the format, and the two together:
a variance decomposition of a fully crossed correctness array `correct[w, f, x]` (wordings x formats x
instances; each (wording, format) pair is one prompt). Pure numpy, as metrics.py.

The model is the three-way crossed ANOVA with instances as a random factor and the declared wordings and
formats as fixed sets (docs/variance.md has the derivation and references):

    y[w, f, x] = mu + alpha_w + beta_f + (alpha beta)_wf + instance terms (gamma_x, (alpha gamma)_wx, ...)

The quantities estimated are those of the *declared* prompts on the *population* of instances the sample
was drawn from: with m[w, f] a prompt's accuracy on that population, the spread of m across the a x b
prompts (population variance, divisor ab, as metrics.py's Std) splits exactly into

    Var_wf(m) = v_wording + v_format + v_interaction
    v_wording = sum_w alpha_w^2 / a,  v_format = sum_f beta_f^2 / b,  v_interaction = sum_wf (alpha beta)_wf^2 / (ab)

(the ANOVA effects of m). Their fixed-set method-of-moments estimators use the mean squares of the sample:

    v_wording     = (a-1)/a            * (MS_W  - MS_WI) / (bc)
    v_format      = (b-1)/b            * (MS_F  - MS_FI) / (ac)
    v_interaction = (a-1)(b-1)/(ab)    * (MS_WF - MS_R)  / c

Each is unbiased whatever the distribution of the instances' outcomes (binary included), provided the
instances are a random sample: the mean square of an instance interaction is exactly the sampling noise of
the matching prompt-level mean square. Instances are crossed with every prompt, not replicates within it;
the textbook two-way formulas that treat them as replicates are biased (research notes, ems_check.py).

The observed variance of the per-prompt accuracies splits, as an identity, into the three estimates plus
the instance-sampling noise [(a-1) MS_WI + (b-1) MS_FI + (a-1)(b-1) MS_R] / (abc), which is never negative.

Negative estimates (a component whose true value is small, or zero, comes out below zero about half the
time) are truncated to 0 before shares are taken: share_X = v_X / (v_wording + v_format + v_interaction),
undefined (None) when all three are 0. Truncation biases the components up a little; it is standard for
method-of-moments variance components.

Intervals: percentile bootstrap over instances (each drawn instance keeps its whole a x b block), seeded,
every replicate truncated as the point is. The raw replicates are first shifted by the bootstrap's bias,
which is known exactly: resampling instances adds their noise again, so unshifted replicates centre on the
uncorrected (plug-in) value, and intervals of small components came out too high (decompose's comment). They are conditional on the declared wordings and formats:
resampling a handful of wordings is degenerate (with three, one resample in nine has a single wording).
The share of replicates truncated at 0 is reported: an interval that reaches exactly 0 is that point mass.

One format (b = 1) or one wording (a = 1): only the other factor's component is estimable; the two others
are None. One prompt: nothing is.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from evaluation.stats.metrics import SEED

COMPONENTS = ("wording", "format", "interaction")
BOOTSTRAP_SAMPLES = 2000
LEVEL = 0.95
CHUNK_VALUES = 4_000_000  # bootstrap counts held at once (replicates x instances), to bound memory
# Components below this are 0: rounding leaves ~1e-31 on constant data, which would otherwise get a share of
# 1. Real ones are far larger: one instance's difference between two prompts on 100,000 instances is ~1e-11.
ZERO = 1e-15


@dataclass(frozen=True)
class MeanSquares:
    """The mean squares of a wordings x formats x instances array, each None where it has no degrees of
    freedom (a factor with one level)."""

    wording: float | None
    format: float | None
    interaction: float | None  # wording x format
    wording_instance: float | None
    format_instance: float | None
    residual: float | None  # wording x format x instance


@dataclass(frozen=True)
class VarianceDecomposition:
    """Variance components of accuracy across prompts (accuracy scale: 0.01 = a 10-point standard
    deviation), their shares, and bootstrap intervals."""

    shape: tuple[int, int, int]  # (wordings, formats, instances) after dropping instances with missing cells
    dropped_instances: int  # instances left out because one of their cells was missing (NaN)
    components: dict[str, float | None]  # truncated at 0; None where not estimable
    raw: dict[str, float | None]  # before truncation
    shares: dict[str, float | None]  # of v_wording + v_format + v_interaction; None where undefined
    observed_variance: float  # of the per-prompt accuracies (divisor ab)
    noise: float  # instance-sampling part of observed_variance (raw components + noise = observed)
    mean_squares: MeanSquares
    # name -> (low, high) at `level`, for each component and f"{name}_share"; None where undefined
    intervals: dict[str, tuple[float, float] | None] = field(default_factory=dict)
    truncated: dict[str, float] = field(default_factory=dict)  # share of replicates truncated at 0
    samples: int = 0
    seed: int = SEED
    level: float = LEVEL

    @property
    def systematic(self) -> float:
        """The spread of the prompts' own accuracies: the sum of the (truncated) components."""
        return float(sum(v for v in self.components.values() if v is not None))


# ---- input ------------------------------------------------------------------------------------------------


def _array(correct) -> tuple[np.ndarray, int]:
    """The (a, b, c) float array with instances that miss a cell (NaN) dropped, and how many were dropped."""
    y = np.asarray(correct, dtype=float)
    if y.ndim == 2:
        y = y[:, None, :]  # (wordings, instances): one format
    if y.ndim != 3:
        raise ValueError(
            f"correct must be a (wordings, formats, instances) array, or (wordings, instances); got {y.ndim}-D."
        )
    if min(y.shape[:2]) < 1:
        raise ValueError(f"correct needs at least one wording and one format; got shape {y.shape}.")
    if np.isinf(y).any():
        raise ValueError("correct holds infinite values.")
    complete = ~np.isnan(y).any(axis=(0, 1))
    y = y[:, :, complete]
    if y.shape[2] < 2:
        raise ValueError(
            f"need at least 2 instances with every cell present; got {y.shape[2]} "
            f"({int((~complete).sum())} dropped for missing cells)."
        )
    return y, int((~complete).sum())


# ---- sums of squares from per-instance statistics -------------------------------------------------------------


@dataclass(frozen=True)
class _PerInstance:
    """Per-instance statistics from which every sum of squares of any resample of instances follows by
    weighted sums (instance x weight), so the bootstrap is a few matrix products."""

    cells: np.ndarray  # (c, ab) the instance's outcomes
    wording_sq: np.ndarray  # (c,) sum_w d_wx^2, d_wx = y_w.x - y_..x
    wording_dev: np.ndarray  # (c, a) d_wx
    format_sq: np.ndarray  # (c,)
    format_dev: np.ndarray  # (c, b)
    residual_sq: np.ndarray  # (c,) sum_wf z_wfx^2, z = y - y_w.x - y_.fx + y_..x
    shape: tuple[int, int, int]


def _per_instance(y: np.ndarray) -> _PerInstance:
    a, b, c = y.shape
    by_w = y.mean(axis=1)  # (a, c)
    by_f = y.mean(axis=0)  # (b, c)
    overall = y.mean(axis=(0, 1))  # (c,)
    d_w = (by_w - overall).T  # (c, a)
    d_f = (by_f - overall).T  # (c, b)
    z = y - by_w[:, None, :] - by_f[None, :, :] + overall
    return _PerInstance(
        cells=y.reshape(a * b, c).T,
        wording_sq=(d_w**2).sum(axis=1),
        wording_dev=d_w,
        format_sq=(d_f**2).sum(axis=1),
        format_dev=d_f,
        residual_sq=(z**2).sum(axis=(0, 1)),
        shape=(a, b, c),
    )


def _mean_squares(stats: _PerInstance, counts: np.ndarray) -> dict[str, np.ndarray]:
    """Mean squares of each resample, `counts` (B, c) saying how often each instance is drawn (a row of ones:
    the sample itself). Each sum of squares of an instance interaction is the weighted sum of the instances'
    squared deviations minus c times the square of their weighted mean (the deviation's prompt-level part)."""
    a, b, c = stats.shape
    w = counts / c  # weights summing to 1
    cell = (w @ stats.cells).reshape(-1, a, b)  # (B, a, b) resampled prompt accuracies
    grand = cell.mean(axis=(1, 2))
    by_w = cell.mean(axis=2) - grand[:, None]
    by_f = cell.mean(axis=1) - grand[:, None]
    inter = cell - cell.mean(axis=2, keepdims=True) - cell.mean(axis=1, keepdims=True) + grand[:, None, None]
    ss = {
        "wording": b * c * (by_w**2).sum(axis=1),
        "format": a * c * (by_f**2).sum(axis=1),
        "interaction": c * (inter**2).sum(axis=(1, 2)),
        # sum_x n_x sum_w (d_wx - dbar_w)^2 = sum_x n_x sum_w d_wx^2 - c sum_w dbar_w^2, times b
        "wording_instance": b * c * (w @ stats.wording_sq - ((w @ stats.wording_dev) ** 2).sum(axis=1)),
        "format_instance": a * c * (w @ stats.format_sq - ((w @ stats.format_dev) ** 2).sum(axis=1)),
        "residual": c * (w @ stats.residual_sq - (inter**2).sum(axis=(1, 2))),
    }
    df = {
        "wording": a - 1,
        "format": b - 1,
        "interaction": (a - 1) * (b - 1),
        "wording_instance": (a - 1) * (c - 1),
        "format_instance": (b - 1) * (c - 1),
        "residual": (a - 1) * (b - 1) * (c - 1),
    }
    # Rounding leaves sums of squares of constant data a hair below zero: they are zero.
    return {name: np.maximum(ss[name], 0.0) / df[name] for name in ss if df[name] > 0}


def _components(
    ms: dict[str, np.ndarray], shape: tuple[int, int, int], *, corrected: bool = True
) -> dict[str, np.ndarray | None]:
    """Raw (untruncated) fixed-set estimates of each component (see the module docstring); with
    `corrected=False`, the plug-in values (the same without the instance-noise correction), which are the
    components of the sample's own prompt accuracies."""
    a, b, c = shape
    noise = (lambda name: ms[name]) if corrected else (lambda name: 0.0)
    out: dict[str, np.ndarray | None] = dict.fromkeys(COMPONENTS)
    if a > 1:
        out["wording"] = (a - 1) * (ms["wording"] - noise("wording_instance")) / (a * b * c)
    if b > 1:
        out["format"] = (b - 1) * (ms["format"] - noise("format_instance")) / (a * b * c)
    if a > 1 and b > 1:
        out["interaction"] = (a - 1) * (b - 1) * (ms["interaction"] - noise("residual")) / (a * b * c)
    return out


def _shares(truncated: dict[str, np.ndarray | None]) -> dict[str, np.ndarray | None]:
    """Each estimable component over their sum; NaN where the sum is 0."""
    present = {name: v for name, v in truncated.items() if v is not None}
    if not present:
        return dict.fromkeys(COMPONENTS)
    total = sum(present.values())
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            name: (np.where(total > 0, v / total, np.nan) if v is not None else None)
            for name, v in truncated.items()
        }


# ---- the decomposition ----------------------------------------------------------------------------------------


def decompose(
    correct, *, samples: int = BOOTSTRAP_SAMPLES, seed: int = SEED, level: float = LEVEL
) -> VarianceDecomposition:
    """Variance components of per-prompt accuracy: wording, format, their interaction (module docstring).

    correct: (wordings, formats, instances) array of 0/1 (or any scores), NaN for a missing cell: instances
    with one are left out, since the estimators need every instance under every prompt; a 2-D array is
    (wordings, instances), one format. samples: bootstrap replicates over instances (0: no intervals)."""
    if samples < 0:
        raise ValueError(f"samples must be 0 or more; got {samples}.")
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1; got {level}.")
    y, dropped = _array(correct)
    a, b, c = y.shape
    stats = _per_instance(y)
    ms = _mean_squares(stats, np.ones((1, c)))
    raw = _components(ms, y.shape)
    point = {name: None if v is None else float(_truncate(v)[0]) for name, v in raw.items()}
    point_shares = _shares({n: None if v is None else np.array([v]) for n, v in point.items()})
    # The observed variance of the prompts' accuracies is the three raw components plus this (an identity).
    noise = sum(
        df * float(ms[name][0])
        for name, df in (
            ("wording_instance", a - 1),
            ("format_instance", b - 1),
            ("residual", (a - 1) * (b - 1)),
        )
        if name in ms
    ) / (a * b * c)
    decomposition = VarianceDecomposition(
        shape=(a, b, c),
        dropped_instances=dropped,
        components=point,
        raw={name: None if v is None else float(v[0]) for name, v in raw.items()},
        shares={
            name: None if v is None or np.isnan(v[0]) else float(v[0]) for name, v in point_shares.items()
        },
        observed_variance=float(y.mean(axis=2).var()),
        noise=noise if noise > ZERO else 0.0,
        mean_squares=MeanSquares(
            **{name: _scalar(ms.get(name)) for name in MeanSquares.__dataclass_fields__}
        ),
        samples=samples,
        seed=seed,
        level=level,
    )
    if samples == 0:
        return decomposition
    # Resampled instances bring their sampling noise again, so the replicates centre on the plug-in values,
    # not on the estimates: they are shifted back by the difference (the bootstrap's own, exactly known,
    # bias). Without the shift, intervals of components near 0 sat too high (coverage 93% for a zero
    # interaction in simulation, 99.7% with it; 95-96% away from 0).
    plug_in = _components(ms, y.shape, corrected=False)
    shift = {name: None if v is None else float(v[0] - plug_in[name][0]) for name, v in raw.items()}
    intervals, truncated = _bootstrap(stats, samples, seed, level, shift)
    return replace(decomposition, intervals=intervals, truncated=truncated)


def _scalar(values: np.ndarray | None) -> float | None:
    return None if values is None else float(values[0])


def _bootstrap(
    stats: _PerInstance, samples: int, seed: int, level: float, shift: dict[str, float | None]
) -> tuple[dict[str, tuple[float, float] | None], dict[str, float]]:
    """Percentile intervals of each truncated component and share over `samples` resamples of instances."""
    c = stats.shape[2]
    rng = np.random.default_rng(seed)
    chunk = max(1, CHUNK_VALUES // c)
    draws: dict[str, list[np.ndarray]] = {name: [] for name in COMPONENTS}
    for start in range(0, samples, chunk):
        size = min(chunk, samples - start)
        # Multinomial counts are the same resample as c draws of instance indices with replacement.
        counts = rng.multinomial(c, np.full(c, 1.0 / c), size=size).astype(float)
        for name, values in _components(_mean_squares(stats, counts), stats.shape).items():
            if values is not None:
                draws[name].append(values + shift[name])
    raw = {name: np.concatenate(v) if v else None for name, v in draws.items()}
    truncated = {name: None if v is None else _truncate(v) for name, v in raw.items()}
    shares = _shares(truncated)
    tail = 100 * (1 - level) / 2
    intervals: dict[str, tuple[float, float] | None] = {}
    for name in COMPONENTS:
        values = truncated[name]
        intervals[name] = None if values is None else _percentiles(values, tail)
        share = shares[name]
        # Replicates where every component truncated to 0 have no shares: left out of the share interval.
        share = None if share is None else share[~np.isnan(share)]
        intervals[f"{name}_share"] = None if share is None or share.size == 0 else _percentiles(share, tail)
    counts = {name: float(np.mean(v <= ZERO)) for name, v in raw.items() if v is not None}
    return intervals, counts


def _truncate(values: np.ndarray) -> np.ndarray:
    return np.where(values > ZERO, values, 0.0)


def _percentiles(values: np.ndarray, tail: float) -> tuple[float, float]:
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)
