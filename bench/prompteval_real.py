"""Budgeted evaluation on real data, with PromptEval's protocol: how well our estimator
(evaluation/stats/estimation.py) recovers the distribution of per-phrasing accuracy from 2, 5 and 10% of the
cells of real correctness matrices, against plain per-phrasing means.

    .venv/bin/python bench/prompteval_real.py --prepare-demo var/prompteval-demo   # build, score, export, run
    .venv/bin/python bench/prompteval_real.py --export DIR     # matrices written by manage.py export_matrices
    .venv/bin/python bench/prompteval_real.py --database       # build them from DATABASE_URL's database

Data. The matrices of evaluation/releases/matrices.py (docs/prompteval.md), one per (model variant, task):
read from an export directory, built from the configured database (--database; --benchmark, default demo),
or, with --prepare-demo DIR, made from scratch in DIR: a fresh SQLite database with the demo benchmark and 64
generated phrasings per task (what bin/run loads: 70 phrasings x 100 instances per task), the offline demo
model built (evaluation/demo_model.py's recipe, cached in DIR; about 4 minutes on one core) and scored
(about 1.5 minutes), no soft prompts; then exported to DIR/matrices and evaluated. Each step is skipped when
done, so a second run only evaluates. Matrices with fewer than --min-phrasings rows are skipped (quantiles of
six phrasings, the plain demo's, mean little).

Protocol (PromptEval's dist_evaluation.py, as docs/prompteval.md describes it): for each matrix, seed and
budget (a share of the cells), the truth is each phrasing's accuracy on every instance; the errors are the
absolute errors of the 5th, 25th, 50th, 75th and 95th percentiles of those accuracies (np.percentile,
linear) and the Wasserstein-1 distance between estimated and true per-phrasing accuracies, in accuracy
points, averaged over matrices and seeds. Methods, on the same budget:
- adaptive, uniform: the estimator as bench/estimation.py runs it (budgeted_estimate; adaptive: a balanced
  half, then two rounds chosen from the estimate so far), optionally with phrasing covariates
  (--covariates: the stored sentence embeddings reduced to 25 PCA components as PromptEval does, the
  discrete format features, or both; default none, as the app's adaptive runs fit) and, where other variants have a matrix on the same instances, their
  per-instance accuracies (bench/estimation.py's shared_instance_effects; --no-shared). Its quantiles and
  distribution are posterior means over the draws (as its figures are), not quantiles of shrunk point
  estimates;
- plain balanced: per-phrasing means of a balanced sample (PromptEval's Baseline with its StratSample:
  the phrasing with fewest cells gets the next one, at its least-covered instance);
- plain uniform: per-phrasing means of a uniform sample, phrasings with no cell left out
  (bench/estimation.py's plain).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import wasserstein_distance

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import estimation as synthetic  # noqa: E402  bench/estimation.py: the synthetic benchmark this follows

from evaluation.stats.estimation import (  # noqa: E402
    budgeted_estimate,
    choose_cells,
    figures_by_row,
    figures_of,
)

QUANTILES = (5, 25, 50, 75, 95)
METHODS = ("adaptive", "uniform", "plain balanced", "plain uniform")
PCA_DIMS = 25  # PromptEval's embedding covariates: 25 principal components


@dataclass
class Case:
    """One matrix to evaluate on, with what the estimator is given besides its cells."""

    name: str
    correct: np.ndarray  # (P, I) bool
    covariates: np.ndarray | None
    instance_effects: np.ndarray | None


# ---- data ---------------------------------------------------------------------------------------------------------


def django_setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
    import django

    django.setup()


def prepare_demo(root: Path) -> Path:
    """The demo benchmark scored by the demo model in a fresh database under root, exported (module
    docstring). Returns the export directory."""
    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    os.environ["VAR_DIR"] = str(root)
    from core.env import sqlite_url

    os.environ["DATABASE_URL"] = sqlite_url(root / "db.sqlite3")
    django_setup()
    from django.core.management import call_command

    from collection.models import Benchmark, Collection
    from evaluation import demo_model
    from evaluation.models import LanguageModel
    from evaluation.releases import matrices
    from evaluation.runs import registry, scoring

    say = lambda text: print(text, file=sys.stderr)  # noqa: E731
    call_command("migrate", verbosity=0)
    call_command("load_demo", generated=64, stdout=sys.stderr)
    with demo_model._threads(demo_model.recipe()["threads"]):  # the recipe's thread count: same weights
        path = demo_model.demo_model_build(say)
        model = LanguageModel.objects.filter(name=demo_model.DEMO_MODEL).first()
        if model is None:
            model = registry.language_model_register(
                name=demo_model.DEMO_MODEL,
                source=str(path),
                family="seq2seq",
                dtype="float32",
                batch_size=32,
                tuned_on=[Collection.objects.get(slug=demo_model.TUNING_COLLECTION)],
                score=False,
                check_now=True,
            )
            model.benchmarks.set([Benchmark.objects.get(slug="demo")])
        scoring.variant_score_now(variant=scoring.base_variant(model), say=say)
    out = root / "matrices"
    matrices.export_matrices(out, benchmark="demo", models=[demo_model.DEMO_MODEL])
    return out


def load_matrices(args: argparse.Namespace) -> tuple[list, str]:
    """The matrices and a line saying where they come from."""
    if args.prepare_demo:
        out = prepare_demo(Path(args.prepare_demo))
        from evaluation.releases import matrices

        return matrices.load_all(out), f"the demo benchmark scored by demo-t5, prepared in {out}"
    django_setup()
    from evaluation.releases import matrices

    if args.export:
        if not (Path(args.export) / matrices.INDEX_JSON).is_file():
            raise SystemExit(
                f"{args.export} has no {matrices.INDEX_JSON}: give a manage.py export_matrices directory."
            )
        try:
            return matrices.load_all(Path(args.export)), f"export directory {args.export}"
        except (ValueError, OSError, KeyError) as exc:
            raise SystemExit(f"Could not read the matrices in {args.export}: {exc}") from exc
    from django.conf import settings

    found = list(
        matrices.task_matrices(benchmark=args.benchmark, embeddings=args.covariates in ("emb", "both"))
    )
    database = settings.DATABASES["default"]["NAME"]
    return found, f"database {database}, benchmark {args.benchmark}"


def covariates_of(matrix, kind: str) -> np.ndarray | None:
    from sklearn.decomposition import PCA

    parts = []
    if kind in ("emb", "both"):
        if matrix.X_emb.shape[1] == 0:
            raise SystemExit(f"{matrix.task}/{matrix.variant} was exported without embeddings.")
        dims = min(PCA_DIMS, matrix.X_emb.shape[0] - 1, matrix.X_emb.shape[1])
        parts.append(PCA(n_components=dims, random_state=0).fit_transform(matrix.X_emb))
    if kind in ("disc", "both"):
        parts.append(matrix.X_disc)
    return np.hstack(parts) if parts else None


def cases_of(found: list, args: argparse.Namespace) -> list[Case]:
    kept = [m for m in found if m.Y.shape[0] >= args.min_phrasings]
    cases = []
    for m in kept:
        others = [
            synthetic.Matrix(o.Y.astype(bool), None)
            for o in kept
            if (o.benchmark, o.task) == (m.benchmark, m.task)
            and o.variant_id != m.variant_id
            and np.array_equal(o.instance_ids, m.instance_ids)
        ]
        shared = None
        if others and not args.no_shared:
            # bench/estimation.py's formula: the logit of each instance's accuracy over the other variants.
            shared = synthetic.shared_instance_effects([*others, synthetic.Matrix(m.Y, None)], len(others))
        cases.append(
            Case(
                f"{m.benchmark}/{m.task}/{m.variant}",
                m.Y.astype(bool),
                covariates_of(m, args.covariates),
                shared,
            )
        )
    return cases


# ---- methods ------------------------------------------------------------------------------------------------------


def estimator_distribution(case: Case, budget: int, rng, strategy: str, args) -> np.ndarray:
    """(D, P) posterior draws of the per-phrasing accuracies."""
    query = lambda cells: case.correct[cells[:, 0], cells[:, 1]]  # noqa: E731
    est, _ = budgeted_estimate(
        query,
        case.correct.shape,
        budget,
        rng,
        strategy=strategy,
        covariates=case.covariates,
        instance_effects=case.instance_effects,
        draws=args.draws,
    )
    return est.accuracy_draws


def plain_accuracies(case: Case, cells: np.ndarray) -> np.ndarray:
    """Per-phrasing means of the sampled cells; phrasings with none left out."""
    p, i = cells[:, 0], cells[:, 1]
    right = np.bincount(p, weights=case.correct[p, i], minlength=case.correct.shape[0])
    seen = np.bincount(p, minlength=case.correct.shape[0])
    return right[seen > 0] / seen[seen > 0]


def errors_of(estimate: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Absolute errors in points: of the QUANTILES, the Wasserstein-1 distance, then of bench/estimation.py's
    FIGURES (AvgP, Q10, Median, Q90, Std). `estimate` is one row of accuracies, or (D, P) draws: then every
    figure, quantile and sorted accuracy is averaged over the draws (the estimator's figures are those means)."""
    draws = np.atleast_2d(estimate)
    quantiles = np.percentile(draws, QUANTILES, axis=1).mean(axis=1)
    distribution = np.sort(draws, axis=1).mean(axis=0)
    by_draw = figures_by_row(draws)
    true_figures = figures_of(truth)
    figures = [abs(by_draw[f].mean() - true_figures[f]) for f in synthetic.FIGURES]
    true_q = np.percentile(truth, QUANTILES)
    return 100 * np.concatenate(
        [np.abs(quantiles - true_q), [wasserstein_distance(distribution, truth)], figures]
    )


def run(cases: list[Case], args: argparse.Namespace) -> dict[tuple[float, str], list[np.ndarray]]:
    """errors[(budget share, method)] = one row of errors_of per (matrix, seed)."""
    errors: dict[tuple[float, str], list[np.ndarray]] = {}
    for seed in range(args.seeds):
        for share in args.budgets:
            for n, case in enumerate(cases):
                truth = case.correct.mean(axis=1)
                budget = max(1, round(share * case.correct.size))
                # The same generator seed for every method, as bench/estimation.py does.
                rng = lambda: np.random.default_rng([seed, n])  # noqa: E731
                empty = np.zeros(case.correct.shape, dtype=bool)
                uniform_cells = choose_cells(empty, budget, rng(), "uniform")
                results = {
                    "adaptive": estimator_distribution(case, budget, rng(), "adaptive", args),
                    "uniform": estimator_distribution(case, budget, rng(), "uniform", args),
                    "plain balanced": plain_accuracies(case, choose_cells(empty, budget, rng(), "adaptive")),
                    "plain uniform": plain_accuracies(case, uniform_cells),
                }
                for method, estimate in results.items():
                    errors.setdefault((share, method), []).append(errors_of(estimate, truth))
        print(f"  seed {seed} done", file=sys.stderr)
    return errors


def report(errors, cases: list[Case], args: argparse.Namespace) -> None:
    figure_names = {"avgp": "AvgP", "q10": "Q10", "median": "Median", "q90": "Q90", "std": "Std"}
    tables = [
        ("PromptEval's protocol", [f"Q{q}" for q in QUANTILES] + ["W1"], slice(0, len(QUANTILES) + 1)),
        (
            "bench/estimation.py's figures",
            [figure_names[f] for f in synthetic.FIGURES],
            slice(len(QUANTILES) + 1, None),
        ),
    ]
    for title, columns, part in tables:
        print(f"{title}:\n")
        print("| Budget | Method | " + " | ".join(columns) + " |")
        print("| --- | --- | " + " | ".join("---" for _ in columns) + " |")
        for share in args.budgets:
            for method in METHODS:
                mean = np.array(errors[(share, method)])[:, part].mean(axis=0)
                print(f"| {share:.0%} | {method} | " + " | ".join(f"{v:.2f}" for v in mean) + " |")
        print()
    runs = len(errors[(args.budgets[0], METHODS[0])])
    se = np.mean(
        [
            np.std(v, axis=0).mean() / np.sqrt(runs)
            for (_, method), v in errors.items()
            if method in METHODS[:2]
        ]
    )
    print(
        f"Mean absolute error in accuracy points over {runs} runs ({len(cases)} matrices x {args.seeds} seeds). "
        f"Standard error of an estimator entry: about {se:.2f} points on average."
    )


def report_per_matrix(errors, cases: list[Case], args: argparse.Namespace) -> None:
    """Each matrix's error averaged over the five quantiles, per budget and method, averaged over seeds."""
    print("\n| Matrix | Budget | " + " | ".join(METHODS) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in METHODS) + " |")
    for n, case in enumerate(cases):
        for share in args.budgets:
            # errors rows run seed by seed, matrices in order within a seed
            means = [
                np.mean([row[: len(QUANTILES)].mean() for row in errors[(share, m)][n :: len(cases)]])
                for m in METHODS
            ]
            print(f"| {case.name} | {share:.0%} | " + " | ".join(f"{v:.2f}" for v in means) + " |")


def describe(cases: list[Case], source: str, skipped: int, args: argparse.Namespace) -> None:
    print(f"Data: {source}.")
    for case in cases:
        acc = case.correct.mean(axis=1)
        q = np.percentile(acc, QUANTILES)
        print(
            f"  {case.name}: {case.correct.shape[0]} phrasings x {case.correct.shape[1]} instances, per-phrasing "
            f"accuracy Q5-Q95 {q[0]:.2f} {q[1]:.2f} {q[2]:.2f} {q[3]:.2f} {q[4]:.2f}"
            + (", with other variants' instance effects" if case.instance_effects is not None else "")
        )
    if skipped:
        print(
            f"  ({skipped} matri{'x' if skipped == 1 else 'ces'} with fewer than {args.min_phrasings} phrasings skipped)"
        )
    print(f"Covariates: {args.covariates}; {args.seeds} seeds; {args.draws} posterior draws per estimate.\n")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--export", metavar="DIR", help="an export directory (manage.py export_matrices)")
    source.add_argument(
        "--database", action="store_true", help="build the matrices from DATABASE_URL's database"
    )
    source.add_argument(
        "--prepare-demo", metavar="DIR", help="make the scored demo in DIR (see above), then evaluate it"
    )
    parser.add_argument("--benchmark", default="demo", help="with --database: the benchmark (default demo)")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--budgets", type=float, nargs="+", default=[0.02, 0.05, 0.10])
    parser.add_argument("--draws", type=int, default=300, help="posterior draws per estimate")
    parser.add_argument(
        "--covariates",
        choices=["none", "emb", "disc", "both"],
        default="none",
        help="phrasing covariates for the estimator (default none: adaptive runs fit without them)",
    )
    parser.add_argument("--per-matrix", action="store_true", help="also each matrix's errors")
    parser.add_argument(
        "--no-shared", action="store_true", help="fit without other variants' instance effects"
    )
    parser.add_argument("--min-phrasings", type=int, default=10)
    args = parser.parse_args()
    if any(not 0 < b <= 1 for b in args.budgets):
        parser.error("--budgets are shares of the cells, above 0 and at most 1.")
    if args.seeds < 1 or args.draws < 2:
        parser.error("--seeds must be at least 1 and --draws at least 2.")
    found, source_line = load_matrices(args)
    cases = cases_of(found, args)
    if not cases:
        raise SystemExit(f"No matrix with at least {args.min_phrasings} phrasings in {source_line}.")
    describe(cases, source_line, len(found) - len(cases), args)
    t0 = time.perf_counter()
    errors = run(cases, args)
    report(errors, cases, args)
    if args.per_matrix:
        report_per_matrix(errors, cases, args)
    print(f"\n{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
