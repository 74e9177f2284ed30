from django.core.management.base import CommandError

from collection.models import Instruction, Task
from core.errors import ApplicationError
from core.jobs import JobStatus
from core.management.base import BaseCommand
from core.parsing import parse_id
from evaluation.leaderboards import adaptive_estimates
from evaluation.management.progress import execute_with_bar
from evaluation.models import LanguageModel, RunTrigger, ScoringPlan
from evaluation.runs import budget, scoring


class Command(BaseCommand):
    help = (
        "Score approved phrasings on a model in the foreground, with a progress bar. Cells already scored are "
        "skipped, so running it again computes only what is new. --plans lists bulk work planned over the "
        "budget; --start-planned sends it to the workers."
    )

    def add_arguments(self, parser):
        parser.add_argument("--model", help="The registered model's name.")
        parser.add_argument("--task", help="Only this task: its slug, or benchmark/slug when slugs repeat.")
        parser.add_argument(
            "--instruction", type=int, help="Only this phrasing (its id), whatever its status."
        )
        parser.add_argument(
            "--adaptive",
            nargs="?",
            const="share",
            metavar="CELLS",
            help="Score each task adaptively (evaluation/leaderboards/adaptive_estimates.py): at most CELLS new cells per task, by "
            "default ADAPTIVE_BUDGET_SHARE of its cells; the figures are estimates until it is exhaustive.",
        )
        parser.add_argument("--plan", action="store_true", help="Print the cells to compute and stop.")
        parser.add_argument(
            "--plans", action="store_true", help="Print the planned bulk work waiting for an admin, and stop."
        )
        parser.add_argument(
            "--start-planned",
            nargs="?",
            const="all",
            metavar="PLAN_ID",
            help="Send a planned plan's runs to the workers (every planned plan without an id).",
        )

    def handle(self, *args, **opts):
        if opts["plans"] or opts["start_planned"]:
            return self._plans(opts["start_planned"])
        if not opts["model"]:
            raise CommandError("Name a --model to score, or use --plans or --start-planned.")
        model = LanguageModel.objects.filter(name=opts["model"]).first()
        if model is None:
            names = ", ".join(LanguageModel.objects.values_list("name", flat=True)) or "none yet"
            raise CommandError(f"No model named '{opts['model']}'. Registered: {names}.")
        variant = scoring.base_variant(model)
        groups = self._scope(opts, model)
        plans = [(task, revs, scoring.scoring_plan(variant=variant, revisions=revs)) for task, revs in groups]
        total = sum(p.total for _, _, p in plans)
        cached = sum(p.cached for _, _, p in plans)
        self.stdout.write(
            f"{model.name}: {total} cells in scope, {cached} already scored, {total - cached} to compute."
        )
        if opts["plan"] or total == cached:
            return
        failures = []
        for task, revisions, plan in plans:
            if plan.to_compute == 0:
                continue
            try:
                run = scoring.scoring_run_create(
                    variant=variant,
                    revisions=revisions,
                    trigger=RunTrigger.CLI,
                    task=task,
                    instruction=self._instruction,
                    enqueue=False,
                    budget_cells=self._budget(opts["adaptive"], plan.total),
                )
            except ApplicationError as exc:
                raise CommandError(str(exc)) from None
            run = execute_with_bar(run, total=plan.total, done=plan.cached, desc=str(task))
            if run is None or run.status != JobStatus.SUCCEEDED:
                failures.append(
                    f"run {run.id if run else '?'} ({task}): {run.error if run else 'not claimed'}"
                )
        if failures:
            raise CommandError("Some runs did not finish:\n" + "\n".join(failures))
        self.stdout.write(self.style.SUCCESS("Done."))

    def _budget(self, adaptive: str | None, cells: int) -> int | None:
        if adaptive is None:
            return None
        if adaptive == "share":
            return adaptive_estimates.default_budget(cells)
        budget = parse_id(adaptive)
        if budget is None:
            raise CommandError(f"--adaptive takes a number of cells (at least 1), not '{adaptive}'.")
        return budget

    def _plans(self, start: str | None) -> None:
        plans = ScoringPlan.objects.filter(status=ScoringPlan.Status.PLANNED).order_by("id")
        if start not in (None, "all"):
            plan_id = parse_id(start)
            if plan_id is None:
                raise CommandError(f"--start-planned takes a plan id, not '{start}'.")
            plans = ScoringPlan.objects.filter(id=plan_id)
            if not plans:
                raise CommandError(f"No plan {start}.")
        if not plans:
            self.stdout.write("No planned bulk work.")
        for plan in plans:
            for line in budget.plan_text(plan):
                self.stdout.write(line)
            if start is not None:
                try:
                    sent = budget.scoring_plan_start(plan=plan)
                except ApplicationError as exc:
                    raise CommandError(str(exc)) from None
                self.stdout.write(self.style.SUCCESS(f"  started: {sent} run(s) sent to the bulk lane."))

    def _scope(self, opts, model: LanguageModel) -> list[tuple[Task, list]]:
        self._instruction = None
        if opts["instruction"]:
            instruction = Instruction.objects.filter(id=opts["instruction"]).select_related("task").first()
            if instruction is None or instruction.current_revision is None:
                raise CommandError(f"No phrasing with id {opts['instruction']}.")
            self._instruction = instruction
            return [(instruction.task, [instruction.current_revision])]
        task = self._task(opts["task"]) if opts["task"] else None
        groups = scoring.revisions_by_task(scoring.approved_revisions(task, model=model))
        if not groups:
            raise CommandError("No approved phrasings in scope.")
        return list(groups.items())

    def _task(self, ref: str) -> Task:
        benchmark, _, slug = ref.rpartition("/")
        tasks = Task.objects.filter(slug=slug)
        if benchmark:
            tasks = tasks.filter(benchmark__slug=benchmark)
        found = list(tasks.select_related("benchmark")[:2])
        if not found:
            raise CommandError(f"No task '{ref}'.")
        if len(found) > 1:
            raise CommandError(
                f"Several tasks are called '{slug}'; write benchmark/slug, e.g. {found[0].benchmark.slug}/{slug}."
            )
        return found[0]
