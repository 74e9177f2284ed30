"""The study's two tables in miniature, from what the app computed on the offline demo model."""

from django.core.management.base import BaseCommand, CommandError

from collection.demo import BENCHMARK_SLUG
from core.errors import ApplicationError
from core.jobs import JobStatus
from evaluation.demo_model import demo_study_ensure
from evaluation.models import BenchmarkSummary, TaskSummary


def pct(figures: dict, key: str) -> str:
    value = figures.get(key)
    if value is None:
        return "–"
    low_high = (figures.get("ci") or {}).get(key)
    ci = f" [{100 * low_high[0]:.1f}, {100 * low_high[1]:.1f}]" if low_high else ""
    return f"{100 * value:.1f}{ci}"


def pp(figures: dict, key: str) -> str:
    value = figures.get(key)
    return "–" if value is None else f"{100 * value:.1f}"


class Command(BaseCommand):
    help = (
        "Build (once, cached) the offline demo model, score it, train its soft prompts (four ablations), and "
        "print the study's tables in miniature: observed vs unobserved accuracy, and base vs +soft prompt on "
        "held-out unobserved phrasings."
    )

    def add_arguments(self, parser):
        parser.add_argument("--quiet", action="store_true", help="Print only the tables.")

    def handle(self, *args, quiet: bool = False, **options):
        say = (lambda text: None) if quiet else (lambda text: self.stdout.write(text))
        try:
            model = demo_study_ensure(say)
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
        out("")
        out("Table 2. Base vs + soft prompt on held-out unobserved phrasings (never trained on)")
        out("")
        out(
            f"{'Variant':<24} {'n':>3}  {'AvgP [95% CI]':<22} {'Std':>5} {'Min':>5} {'Spread':>6} {'Δ AvgP':>7}"
        )
        base_held = self._summaries(base).get("heldout_unobserved", {})
        out(
            f"{'base':<24} {base_held.get('phrasings', 0):>3}  {pct(base_held, 'avgp'):<22} {pp(base_held, 'std'):>5} "
            f"{pp(base_held, 'min'):>5} {pp(base_held, 'spread'):>6} {'':>7}"
        )
        for soft in (
            model.soft_prompts.filter(status=JobStatus.SUCCEEDED).select_related("variant").order_by("id")
        ):
            f = self._summaries(soft.variant).get("heldout_unobserved", {})
            delta = (
                ""
                if f.get("avgp") is None or base_held.get("avgp") is None
                else f"{100 * (f['avgp'] - base_held['avgp']):+.1f}"
            )
            label = f"+ soft prompt ({soft.ablation})"
            out(
                f"{label:<24} {f.get('phrasings', 0):>3}  {pct(f, 'avgp'):<22} {pp(f, 'std'):>5} {pp(f, 'min'):>5} "
                f"{pp(f, 'spread'):>6} {delta:>7}"
            )
        held = rows.get("heldout_unobserved", {})
        tasks = TaskSummary.objects.filter(variant=base, phrasing_set="heldout_unobserved").count()
        out("")
        out(
            f"Held-out unobserved phrasings: {held.get('phrasings', 0)} across {tasks} task(s); every soft prompt "
            "was trained on the other approved phrasings and the training split only."
        )

    def _summaries(self, variant) -> dict:
        return {
            s.phrasing_set: s.figures
            for s in BenchmarkSummary.objects.filter(
                variant=variant, benchmark__slug=BENCHMARK_SLUG, task_kind=""
            )
        }
