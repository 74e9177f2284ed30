from django.core.management.base import CommandError

from collection import formats
from collection.models import Benchmark, Task
from core.errors import ApplicationError
from core.jobs import JobStatus
from core.management.base import BaseCommand
from evaluation.leaderboards.format_variance import format_spread
from evaluation.management.progress import execute_with_bar
from evaluation.models import LanguageModel, RunTrigger
from evaluation.runs import format_cells, scoring


class Command(BaseCommand):
    help = (
        "Score a model's approved phrasings that list their options with {options} in the declared formats "
        "(collection/formats.py), then print, per task, how much of the spread across prompts is wording, "
        "format and their interaction (evaluation/stats/variance.py). Cells already scored are skipped."
    )

    def add_arguments(self, parser):
        parser.add_argument("--model", required=True, help="The registered model's name.")
        parser.add_argument("--benchmark", help="Only this benchmark's tasks (its slug).")
        parser.add_argument("--task", help="Only this task (its slug).")
        parser.add_argument(
            "--wordings", type=int, help="Only the first N formattable phrasings of each task (by id)."
        )
        parser.add_argument(
            "--queue",
            action="store_true",
            help="Send the runs to the workers (through the budget gate) instead of scoring here.",
        )
        parser.add_argument("--plan", action="store_true", help="Print the cells to compute and stop.")
        parser.add_argument(
            "--samples", type=int, default=2000, help="Bootstrap replicates for the intervals."
        )

    def handle(self, *args, **opts):
        model = LanguageModel.objects.filter(name=opts["model"]).first()
        if model is None:
            raise CommandError(f"No model named '{opts['model']}'.")
        if opts["wordings"] is not None and opts["wordings"] < 1:
            raise CommandError("--wordings takes a number of phrasings, at least 1.")
        variant = scoring.base_variant(model)
        tasks = self._tasks(opts)
        groups = []
        for task in tasks:
            revisions = scoring.format_revisions(variant, task, wordings=opts["wordings"]).get(task)
            if revisions:
                groups.append((task, revisions))
        if not groups:
            raise CommandError("No approved phrasing of these tasks lists its options with {options}.")
        keys = format_cells.DECLARED
        plans = [
            (t, revs, scoring.scoring_plan(variant=variant, revisions=revs, formats=keys))
            for t, revs in groups
        ]
        total, cached = sum(p.total for *_, p in plans), sum(p.cached for *_, p in plans)
        self.stdout.write(
            f"{model.name}: {len(groups)} task(s), {sum(len(r) for _, r, _ in plans)} phrasings x {len(keys)} "
            f"declared formats: {total} cells, {cached} already scored, {total - cached} to compute."
        )
        if opts["plan"]:
            return
        if opts["queue"]:
            runs = scoring.scoring_formats(
                variants=[variant],
                task=tasks[0] if len(tasks) == 1 else None,
                wordings=opts["wordings"],
                trigger=RunTrigger.MANUAL,
            )
            planned = [run for run in runs if run.plan_id]
            self.stdout.write(
                f"{len(runs)} run(s) "
                + (f"kept as plan {planned[0].plan_id} (over the budget)." if planned else "sent.")
            )
            return
        for task, revisions, plan in plans:
            if plan.to_compute:
                self._score(variant, task, revisions, keys, plan)
        for task, _, _ in plans:
            self._print(format_spread(variant, task, samples=opts["samples"]))

    def _tasks(self, opts) -> list[Task]:
        tasks = Task.objects.filter(instances__isnull=False).distinct().select_related("benchmark")
        if opts["benchmark"]:
            if not Benchmark.objects.filter(slug=opts["benchmark"]).exists():
                raise CommandError(f"No benchmark '{opts['benchmark']}'.")
            tasks = tasks.filter(benchmark__slug=opts["benchmark"])
        if opts["task"]:
            tasks = tasks.filter(slug=opts["task"])
            if not tasks:
                raise CommandError(f"No task '{opts['task']}'.")
        return list(tasks.order_by("benchmark__slug", "slug"))

    def _score(self, variant, task, revisions, keys, plan) -> None:
        try:
            run = scoring.scoring_run_create(
                variant=variant,
                revisions=revisions,
                trigger=RunTrigger.CLI,
                task=task,
                enqueue=False,
                formats=keys,
            )
        except ApplicationError as exc:
            raise CommandError(str(exc)) from None
        run = execute_with_bar(run, total=plan.total, done=plan.cached, desc=f"{task} formats")
        if run is None or run.status != JobStatus.SUCCEEDED:
            raise CommandError(
                f"Run {run.id if run else '?'} on {task} did not finish: {run.error if run else ''}"
            )

    def _print(self, spread) -> None:
        self.stdout.write(f"\n{spread.task}: {spread.wordings} wordings x {len(spread.formats)} formats")
        if spread.left_out:
            self.stdout.write(f"  {spread.left_out} wording(s) left out: not scored in every format.")
        if spread.fixed_layout:
            self.stdout.write(
                f"  {spread.fixed_layout} phrasing(s) fix their options' layout in their text and keep it."
            )
        if spread.wordings:
            by_format = spread.accuracy.mean(axis=0)
            for key, accuracy in zip(spread.formats, by_format):
                self.stdout.write(f"  {formats.BY_KEY[key].label:<34} mean accuracy {100 * accuracy:5.1f}%")
        d = spread.decomposition
        if d is None:
            self.stdout.write("  Too few wordings for a decomposition.")
            return
        self.stdout.write(
            f"  Spread across the prompts: Std {100 * d.observed_variance**0.5:.1f} pp "
            f"(instance-sampling noise alone: {100 * d.noise**0.5:.1f} pp)"
        )
        if sum(v or 0 for v in d.components.values()) < d.noise:
            self.stdout.write("  Most of the spread is instance-sampling noise: read the shares with care.")
        for name in ("wording", "format", "interaction"):
            share, interval = d.shares.get(name), d.intervals.get(f"{name}_share")
            text = "n/a" if share is None else f"{100 * share:5.1f}%"
            if interval is not None and share is not None:
                text += f"  [{100 * interval[0]:.1f}, {100 * interval[1]:.1f}]"
            component, spread = d.components.get(name), d.intervals.get(name)
            if component is not None:
                text += f"   its Std {100 * component**0.5:.1f} pp"
                if spread is not None:
                    text += f" [{100 * spread[0] ** 0.5:.1f}, {100 * spread[1] ** 0.5:.1f}]"
            self.stdout.write(f"  {name:<12} share {text}")
