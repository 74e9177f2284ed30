"""Budgeted evaluation: how close the estimator of evaluation/stats/estimation.py gets to the exhaustive figures
from a fraction of the cells, against plain per-phrasing averages of a uniform sample of the same size.

    .venv/bin/python bench/estimation.py                    # default run: about 2 minutes on 2 cores
    .venv/bin/python bench/estimation.py --seeds 25        # the sharper table (10 minutes)
    .venv/bin/python bench/estimation.py --smoke           # 2 models x 12 phrasings x 20 instances: runs, or not

Full matrices. Synthetic "random models", as bench/leaderboard.py makes them but with the structure real
results have (a Rasch-style model is *not* exactly what generates them):
- per task, instance effects beta_i ~ N(0, 1.2^2), shared by every model;
- per model, an ability (average accuracy about 40-80%) and a spread of its phrasing effects (sd 0.1-0.4
  logits);
- phrasing effects = a part explained by the phrasing's embedding (correlation --covariate-corr) plus a
  part that is not, with a heavy lower tail: --broken of the phrasings are broken for the model (logit
  lowered by 0.5-2), as a phrasing whose answer format the model misreads;
- a phrasing x instance interaction (logit noise sd --interaction per cell), which the model cannot fit;
- phrasing covariates: 16 dimensions carrying the embedding part, with noise, plus 16 of pure noise;
- the estimator is also given the other models' per-instance accuracies on the task (as logits), as a
  leaderboard would have them (--no-shared to leave them out, --no-covariates for the covariates).
With 100 instances the per-phrasing accuracies come out with a Std of about 8 points, Q10 9 points and
Q90 7 points from the median, mean 0.9 below it; the study's published results (larger tasks, so less
binomial noise) average 4.9, -6.5, +4.4 and -0.6.
The exhaustive figures are computed on the full matrix by metrics.py's definitions (estimation.figures_of).
The offline demo model (evaluation/demo_model.py) is not used: it has 6 phrasings per task, too few for
quantiles, and building it trains a T5 from scratch, which is not cheap.

Methods, all with the same budget of cells on the same matrix and seed:
- adaptive: the estimator, cells chosen by choose_cells(strategy="adaptive") in rounds
  (a balanced half, then two rounds chosen from the estimate so far);
- uniform: the estimator on a uniform random sample;
- plain: per-phrasing averages of the same uniform random sample (phrasings with no cell left out).
The error is the mean absolute error in accuracy points over models and seeds. At the default size an
estimator entry's standard error is about 0.2 points (printed), so smaller differences are noise: use
--seeds for a sharper table (each seed adds about 30 s).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from benchdb import SMOKE_HELP
from scipy.special import expit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluation.stats.estimation import budgeted_estimate, figures_of

FIGURES = ("avgp", "q10", "median", "q90", "std")
GOAL_FIGURES = ("avgp", "q10", "median", "q90")
GOAL_BUDGET, GOAL_POINTS = 0.10, 2.0


@dataclass(frozen=True)
class Matrix:
    correct: np.ndarray  # (P, I) bool
    covariates: np.ndarray  # (P, d)


def make_models(args: argparse.Namespace, rng: np.random.Generator) -> list[Matrix]:
    """Full correctness matrices for --models random models on one task (see the module docstring)."""
    n_p, n_i = args.phrasings, args.instances
    beta = rng.normal(0, 1.2, n_i)
    latent = rng.standard_normal((n_p, 16))
    covariates = np.hstack([latent + rng.normal(0, 0.5, latent.shape), rng.standard_normal((n_p, 16))])
    out = []
    for _ in range(args.models):
        ability = rng.uniform(-0.4, 1.4)
        spread = rng.uniform(0.1, 0.4)
        direction = rng.standard_normal(16)
        explained = latent @ direction / np.linalg.norm(direction)
        rho = args.covariate_corr
        theta = spread * (rho * explained + np.sqrt(1 - rho**2) * rng.standard_normal(n_p))
        broken = rng.random(n_p) < args.broken
        theta[broken] -= rng.uniform(0.5, 2.0, broken.sum())
        logit = ability + theta[:, None] - beta[None, :] + rng.normal(0, args.interaction, (n_p, n_i))
        out.append(Matrix(rng.random((n_p, n_i)) < expit(logit), covariates))
    return out


def plain_figures(m: Matrix, budget: int, rng: np.random.Generator) -> dict[str, float]:
    flat = rng.choice(m.correct.size, size=budget, replace=False)
    p, i = np.unravel_index(flat, m.correct.shape)
    right = np.bincount(p, weights=m.correct[p, i], minlength=m.correct.shape[0])
    seen = np.bincount(p, minlength=m.correct.shape[0])
    return figures_of(right[seen > 0] / seen[seen > 0])


def shared_instance_effects(models: list[Matrix], n: int) -> np.ndarray:
    """What a leaderboard knows before scoring model n: the other models' full results on the same
    instances, as the logit of each instance's accuracy over them (smoothed away from 0 and 1)."""
    others = [m.correct for k, m in enumerate(models) if k != n]
    right = np.sum([c.sum(axis=0) for c in others], axis=0)
    total = sum(c.shape[0] for c in others)
    share = (right + 0.5) / (total + 1)
    return np.log(share / (1 - share))


def estimator_figures(models, n: int, budget: int, rng, strategy: str, args) -> dict[str, float]:
    m = models[n]
    query = lambda cells: m.correct[cells[:, 0], cells[:, 1]]  # noqa: E731
    est, _ = budgeted_estimate(
        query,
        m.correct.shape,
        budget,
        rng,
        strategy=strategy,
        covariates=None if args.no_covariates else m.covariates,
        instance_effects=None if args.no_shared else shared_instance_effects(models, n),
        draws=args.draws,
    )
    return est.figures


def run(args: argparse.Namespace) -> dict[tuple[float, str], dict[str, list[float]]]:
    """errors[(budget share, method)][figure] = absolute errors in points, one per (model, seed)."""
    errors: dict[tuple[float, str], dict[str, list[float]]] = {}
    for seed in range(args.seeds):
        models = make_models(args, np.random.default_rng(1000 + seed))
        for share in args.budgets:
            for n, m in enumerate(models):
                truth = figures_of(m.correct.mean(axis=1))
                budget = round(share * m.correct.size)
                results = {
                    # The same generator seed for every method: uniform and plain draw the same cells.
                    "adaptive": estimator_figures(
                        models, n, budget, np.random.default_rng([seed, n]), "adaptive", args
                    ),
                    "uniform": estimator_figures(
                        models, n, budget, np.random.default_rng([seed, n]), "uniform", args
                    ),
                    "plain": plain_figures(m, budget, np.random.default_rng([seed, n])),
                }
                for method, figures in results.items():
                    row = errors.setdefault((share, method), {f: [] for f in FIGURES})
                    for f in FIGURES:
                        row[f].append(100 * abs(figures[f] - truth[f]))
        print(f"  seed {seed} done", file=sys.stderr)
    return errors


def report(errors, args: argparse.Namespace) -> None:
    names = {"avgp": "AvgP", "q10": "Q10", "median": "Median", "q90": "Q90", "std": "Std"}
    print("| Budget | Method | " + " | ".join(names[f] for f in FIGURES) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in FIGURES) + " |")
    for share in args.budgets:
        plain = {f: np.mean(errors[(share, "plain")][f]) for f in FIGURES}
        for method in ("adaptive", "uniform", "plain"):
            cells = []
            for f in FIGURES:
                mae = np.mean(errors[(share, method)][f])
                ratio = "" if method == "plain" else f" ({mae / plain[f]:.2f}x)"
                cells.append(f"{mae:.2f}{ratio}")
            print(f"| {share:.0%} | {method} | " + " | ".join(cells) + " |")
    runs = len(next(iter(errors.values()))["avgp"])
    se = np.mean(
        [
            np.std(v) / np.sqrt(runs)
            for (_, method), row in errors.items()
            if method != "plain"
            for v in row.values()
        ]
    )
    print(
        f"\nMean absolute error in accuracy points over {runs} runs (models x seeds); (ratio to plain averages "
        f"of a uniform sample). Standard error of an estimator entry: about {se:.2f} points on average."
    )
    if GOAL_BUDGET in args.budgets:
        for method in ("adaptive", "uniform"):
            row = errors[(GOAL_BUDGET, method)]
            plain = errors[(GOAL_BUDGET, "plain")]
            met = all(
                np.mean(row[f]) <= GOAL_POINTS and np.mean(row[f]) < np.mean(plain[f]) for f in GOAL_FIGURES
            )
            print(
                f"Goal at {GOAL_BUDGET:.0%} ({method}): every one of AvgP, Q10, Median, Q90 <= {GOAL_POINTS} "
                f"points and below plain: {'met' if met else 'NOT met'}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", type=int, default=4)
    parser.add_argument("--phrasings", type=int, default=100)
    parser.add_argument("--instances", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--budgets", type=float, nargs="+", default=[0.02, 0.05, 0.10, 0.20])
    parser.add_argument("--draws", type=int, default=300, help="posterior draws per estimate")
    parser.add_argument("--covariate-corr", type=float, default=0.5)
    parser.add_argument("--broken", type=float, default=0.05)
    parser.add_argument("--interaction", type=float, default=0.3)
    parser.add_argument("--no-covariates", action="store_true", help="fit without phrasing covariates")
    parser.add_argument(
        "--no-shared", action="store_true", help="fit without the other models' instance effects"
    )
    parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = parser.parse_args()
    if args.smoke:
        args.models, args.phrasings, args.instances, args.seeds, args.budgets, args.draws = (
            2,
            12,
            20,
            1,
            [0.2],
            20,
        )
    print(
        f"{args.models} models x {args.phrasings} phrasings x {args.instances} instances, {args.seeds} seeds, "
        f"covariate correlation {args.covariate_corr}{' (not used)' if args.no_covariates else ''}, "
        f"instance effects of the other models {'not used' if args.no_shared else 'used'}, "
        f"broken {args.broken:.0%}, interaction sd {args.interaction}\n"
    )
    t0 = time.perf_counter()
    errors = run(args)
    report(errors, args)
    print(f"\n{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
