"""The study's two tables in miniature, from what the app computed on the offline demo model."""

from json import dumps, loads
from pathlib import Path

from django.core.management.base import CommandError
from django.db import connection

from collection.demo import BENCHMARK_SLUG
from core.errors import ApplicationError
from core.management.base import BaseCommand
from evaluation.demo_model import ABLATIONS, demo_study_ensure, recipe
from evaluation.models import BenchmarkSummary
from evaluation.robustness.outcome import calibration_outcome, heldout_improvements, latest_soft_prompts
from evaluation.split import app_seed
from evaluation.stats.paired_bootstrap import Improvement


def pct(figures: dict, key: str) -> str:
    value = figures.get(key)
    if value is None:
        return "–"
    low_high = (figures.get("ci") or {}).get(key)
    ci = f" [{100 * low_high[0]:.1f}, {100 * low_high[1]:.1f}]" if low_high else ""
    return f"{100 * value:.1f}{ci}"


def delta(improvement: Improvement) -> str:
    low, high = improvement.ci
    return f"{100 * improvement.difference:+.1f} [{100 * low:+.1f}, {100 * high:+.1f}]"


def side(improvement: Improvement) -> str:
    """Whether the interval excludes 0, and on which side."""
    if not improvement.excludes_zero:
        return "no"
    return "yes (gain)" if improvement.ci[0] > 0 else "yes (loss)"


def pp(figures: dict, key: str) -> str:
    value = figures.get(key)
    return "–" if value is None else f"{100 * value:.1f}"


# The README's ranges: each headline figure's minimum and maximum over the builds bench/study_ranges.py ran
# (build seeds x databases), which it writes here.
RANGES_FILE = Path(__file__).resolve().parents[2] / "demo_study_ranges.json"


def headline_figures(overall: dict, rows: dict, by_split: dict) -> dict:
    """Table 1's and Table 2's headline figures (in points; PDR as a ratio), with where they came from."""
    in_points = {
        "observed_avgp": rows.get("observed", {}).get("avgp"),
        "unobserved_avgp": rows.get("unobserved", {}).get("avgp"),
        "gap": overall.get("gap"),
    }
    figures = {key: None if value is None else round(100 * value, 2) for key, value in in_points.items()}
    figures["pdr"] = None if overall.get("pdr") is None else round(overall["pdr"], 4)
    for split_seed, outcomes in by_split.items():
        for method, outcome in outcomes.items():
            figures[f"split{split_seed}:{method}"] = round(100 * outcome.macro.difference, 2)
            figures[f"split{split_seed}:{method}:base_avgp"] = round(100 * outcome.base_accuracy, 2)
    return {
        "build_seed": recipe()["seed"],
        "database": connection.vendor,
        "figures": figures,
    }


def load_ranges() -> dict | None:
    return loads(RANGES_FILE.read_text(encoding="utf-8")) if RANGES_FILE.is_file() else None


def against_ranges(measured: dict, ranges: dict | None) -> list[str]:
    """Whether each headline figure falls inside the README's measured range for it."""
    if ranges is None:
        return [f"No measured ranges to compare with ({RANGES_FILE.name} is missing)."]
    if ranges.get("recipe") != {k: v for k, v in recipe().items() if k != "seed"}:
        return ["The demo model's recipe differs from the one the README's ranges were measured on."]
    lines = [
        # Not every seed ran on every database (the README's table says which ran where).
        f"Against the README's ranges ({ranges['runs']} runs of build seeds {ranges['build_seeds']}, on "
        f"{' or '.join(ranges['databases'])}, {len(ranges.get('cpus', [])) or 'one'} CPU type(s); this run: "
        f"build seed {measured['build_seed']} on {measured['database']}):"
    ]
    outside = 0
    for name, value in measured["figures"].items():
        low_high = ranges["figures"].get(name)
        if value is None or low_high is None:
            continue
        inside = low_high[0] <= value <= low_high[1]
        outside += not inside
        lines.append(
            f"  {name:<32} {value:>8}  {'inside' if inside else 'OUTSIDE'} [{low_high[0]}, {low_high[1]}]"
        )
    lines.append(
        "All inside the measured ranges."
        if not outside
        else f"{outside} figure(s) outside the measured ranges (another CPU type or library version can do this; "
        "the ranges are over few builds)."
    )
    return lines


class Command(BaseCommand):
    help = (
        "Build (once, cached) the offline demo model, score it, batch-calibrate it, train its soft prompts (four "
        "ablations and the consistency baseline, three seeds each), and print the study's tables in miniature: "
        "observed vs unobserved accuracy, and each method's improvement over the base model on held-out "
        "unobserved phrasings, with a paired bootstrap CI, seeds pooled; with several --split-seeds, each "
        "method across the splits."
    )

    def add_arguments(self, parser):
        parser.add_argument("--quiet", action="store_true", help="Print only the tables.")
        parser.add_argument(
            "--json",
            type=Path,
            default=None,
            metavar="FILE",
            help="Also write the tables' headline figures to FILE (bench/study_ranges.py collects them over "
            "build seeds and databases).",
        )
        parser.add_argument(
            "--split-seeds",
            type=int,
            nargs="+",
            default=None,
            metavar="SEED",
            help="Train and judge the soft prompts on each of these held-out splits (default: "
            "SOFTPROMPT_SPLIT_SEED's alone), and with more than one print Table 3, each method across the "
            "splits. Each split costs another 15 soft prompts.",
        )

    def handle(self, *args, quiet: bool = False, split_seeds=None, json: Path | None = None, **options):
        say = (lambda text: None) if quiet else (lambda text: self.stdout.write(text))
        split_seeds = tuple(dict.fromkeys(split_seeds or [app_seed()]))
        if any(seed < 0 for seed in split_seeds):
            raise CommandError("Split seeds are 0 or more.")
        try:
            model = demo_study_ensure(say, split_seeds)
        except (RuntimeError, ApplicationError) as exc:
            raise CommandError(str(exc)) from exc
        base = model.variants.get(kind="base")
        rows = self._summaries(base)
        if "all" not in rows:
            raise CommandError("The demo model has no figures yet; is the demo benchmark loaded?")
        out = self.stdout.write
        out("")
        out(f"Table 1. {model.name} on the demo benchmark: observed vs unobserved phrasings")
        out(
            "(accuracy %, macro average over tasks, 95% CI from a two-way bootstrap over phrasings and instances)"
        )
        out("")
        out(f"{'Phrasings':<12} {'n':>3}  {'AvgP [95% CI]':<22} {'Std':>5} {'Min':>5} {'MaxP':>5}")
        for name in ("observed", "unobserved"):
            f = rows.get(name, {})
            out(
                f"{name.capitalize():<12} {f.get('phrasings', 0):>3}  {pct(f, 'avgp'):<22} {pp(f, 'std'):>5} "
                f"{pp(f, 'min'):>5} {pp(f, 'maxp'):>5}"
            )
        f = rows["all"]
        out(
            f"{'Gap (pp)':<12} {'':>3}  {pct(f, 'gap'):<22}   (observed − unobserved; PDR {f.get('pdr') or 0:.3f})"
        )
        by_split = {}
        for split_seed in split_seeds:
            out("")
            by_split[split_seed] = self._table_2(model, out, split_seed)
            self._early_stopping(model, out, split_seed)
        if len(split_seeds) > 1:
            out("")
            self._table_3(by_split, out)
        figures = headline_figures(rows["all"], rows, by_split)
        out("")
        for line in against_ranges(figures, load_ranges()):
            out(line)
        if json is not None:
            json.write_text(dumps(figures, indent=2, sort_keys=True), encoding="utf-8")

    def _table_2(self, model, out, split_seed: int) -> dict:
        outcomes = {o.method: o for o in heldout_improvements(model, split_seed=split_seed)}
        # On the app's split, the calibrated variant's stored predictions, as its leaderboard rows read them.
        calibration = calibration_outcome(model, split_seed=split_seed)
        if calibration is not None:
            outcomes[calibration.method] = calibration
        order = [m for m in ABLATIONS if m in outcomes] + sorted(set(outcomes) - set(ABLATIONS))
        app = " (the app's split)" if split_seed == app_seed() else ""
        out(
            "Table 2. + soft prompt (and batch calibration) vs base on held-out unobserved phrasings (never trained on); "
            f"split seed {split_seed}{app}"
        )
        out(
            "(Δ accuracy in points, macro average over tasks, seeds pooled; 95% CI from a paired two-way bootstrap "
            "over phrasings and instances)"
        )
        out("")
        if not order:
            out("No soft prompt has been scored on held-out unobserved phrasings yet.")
            return outcomes
        out(
            f"{'Method':<18} {'seeds':>5} {'phrasings':>9} {'base AvgP':>9}  {'Δ [95% CI]':<22} {'per seed':<20} CI excludes 0"
        )
        for method in order:
            o = outcomes[method]
            seeds = " ".join(f"{100 * d:+.1f}" for d in o.per_seed.values())
            out(
                f"{method:<18} {len(o.seeds):>5} {o.macro.phrasings:>9} {100 * o.base_accuracy:>9.1f}  "
                f"{delta(o.macro):<22} {seeds:<20} {side(o.macro)}"
            )
        tasks = sorted({task for o in outcomes.values() for task in o.per_task})
        out("")
        out("Per task, Δ [95% CI] (phrasings x instances):")
        out(f"{'Task':<24} " + " ".join(f"{m:<22}" for m in order))
        for task in tasks:
            cells = []
            for method in order:
                improvement = outcomes[method].per_task.get(task)
                cells.append(delta(improvement) if improvement else "–")
            first = outcomes[order[0]].per_task.get(task)
            size = f" ({first.phrasings}x{first.instances})" if first else ""
            out(f"{task + size:<24} " + " ".join(f"{c:<22}" for c in cells))
        excluding = [f"{m} {side(outcomes[m].macro)[4:]}" for m in order if outcomes[m].macro.excludes_zero]
        out("")
        out(
            "Methods whose macro CI excludes 0: "
            + (", ".join(excluding) if excluding else "none")
            + ". Every soft prompt was trained on the other approved phrasings and the training split only; "
            "batch calibration needs no training (the base model's scores, calibrated over each phrasing's unlabeled "
            "evaluation sample; its rows are on the leaderboard's held-out views)."
        )
        return outcomes

    def _table_3(self, by_split: dict[int, dict], out) -> None:
        """Each method over the splits: a finding is one that holds whichever phrasings were held out."""
        seeds = list(by_split)
        methods = [m for m in ABLATIONS if all(m in o for o in by_split.values())]
        methods += sorted({m for o in by_split.values() for m in o} - set(ABLATIONS) - set(methods))
        out(
            f"Table 3. Each method over {len(seeds)} held-out splits (split seeds {' '.join(map(str, seeds))}): "
            "a different draw of held-out phrasings each, soft prompts retrained on the rest"
        )
        out(
            "(Δ accuracy in points [95% CI] per split, as in Table 2; the mean and range are over splits. The "
            "intervals are within a split; the spread across splits is the uncertainty they leave out)"
        )
        out("")
        out(
            f"{'Method':<18} "
            + " ".join(f"{f'split {seed}':<22}" for seed in seeds)
            + f" {'mean':>6} {'range':<14} CI excludes 0"
        )
        holding = []
        for method in methods:
            improvements = [
                by_split[seed][method].macro if method in by_split[seed] else None for seed in seeds
            ]
            present = [i for i in improvements if i is not None]
            differences = [100 * i.difference for i in present]
            gains = sum(i.ci[0] > 0 for i in present)
            losses = sum(i.ci[1] < 0 for i in present)
            out(
                f"{method:<18} "
                + " ".join(f"{delta(i) if i else '–':<22}" for i in improvements)
                + f" {sum(differences) / len(differences):>+6.1f} "
                + f"{f'{min(differences):+.1f}..{max(differences):+.1f}':<14} "
                + f"gain {gains}/{len(seeds)}, loss {losses}/{len(seeds)}"
            )
            if gains == len(seeds):
                holding.append(f"{method} (gain)")
            elif losses == len(seeds):
                holding.append(f"{method} (loss)")
        out("")
        out(
            "Methods whose CI excludes 0 on the same side on every split: "
            + (", ".join(holding) if holding else "none")
            + "."
        )

    def _early_stopping(self, model, out, split_seed: int) -> None:
        """Where each early-stopped soft prompt stopped and which step's prompt it kept (its curve says)."""
        lines = []
        for method, softs in latest_soft_prompts(model, split_seed).items():
            for soft in softs:
                last = soft.curve[-1] if soft.curve else {}
                if "kept_step" in last:
                    steps = soft.config.get("steps")
                    ran = (
                        f"stopped at step {last['step']} of {steps}"
                        if last["step"] < steps
                        else "ran all steps"
                    )
                    lines.append(
                        f"{method} seed {soft.config.get('seed', 0)}: {ran}, kept step {last['kept_step']}"
                    )
        if lines:
            out("")
            out(
                "Early stopping (agreement between phrasings on unlabeled held-out training instances): "
                + "; ".join(lines)
                + "."
            )

    def _summaries(self, variant) -> dict:
        return {
            s.phrasing_set: s.figures
            for s in BenchmarkSummary.objects.filter(
                variant=variant, benchmark__slug=BENCHMARK_SLUG, task_kind=""
            )
        }
