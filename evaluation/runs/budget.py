"""A budget before bulk work: registration backfills, imports and "score everything" send their runs only
when the cells they compute fit SCORING_BUDGET_CELLS. Over it, the runs are kept as one plan (planned, not
sent) for an admin to read (cells, cached, estimated time per model) and start: on the plan's page, by the
API (`POST /api/plans/<id>/start/`) or with `manage.py score --start-planned`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Sum
from django.utils import timezone

from core import jobs
from core.errors import Conflict
from core.jobs import JobStatus
from evaluation.models import ScoringPlan, ScoringRun
from evaluation.runs.queue import throughputs


def bulk_submit(*, runs: list[ScoringRun], trigger: str, by=None) -> list[ScoringRun]:
    """Send bulk runs created as planned, or, when together they compute more cells than the budget, keep
    them as one plan for an admin. Returns the runs as they are now (`run.plan` says which happened)."""
    if not runs:
        return runs
    ids = [run.id for run in runs]
    if sum(run.to_compute for run in runs) > settings.SCORING_BUDGET_CELLS:
        plan = ScoringPlan.objects.create(
            trigger=trigger, budget_cells=settings.SCORING_BUDGET_CELLS, created_by=by
        )
        ScoringRun.objects.filter(id__in=ids).update(plan=plan)
    else:
        jobs.start_planned(ScoringRun, ids)
    return list(ScoringRun.objects.filter(id__in=ids).select_related("plan", "task", "variant__model"))


def bulk_summary(runs: list[ScoringRun]) -> str:
    """What a bulk action did, in one sentence for a message or a command's output."""
    if not runs:
        return "Nothing to do: every cell in scope is already scored."
    cells = sum(run.to_compute for run in runs)
    plan = runs[0].plan
    if plan is None:
        return f"Queued {len(runs)} run(s): {cells:,} cell(s) to compute."
    return (
        f"Planned {len(runs)} run(s): {cells:,} cell(s) to compute, over the budget of "
        f"{plan.budget_cells:,} (SCORING_BUDGET_CELLS). Nothing is sent until an admin starts plan "
        f"{plan.id}: {plan.get_absolute_url()}, POST /api/plans/{plan.id}/start/ or "
        f"`manage.py score --start-planned {plan.id}`."
    )


@dataclass(frozen=True)
class PlanRow:
    model: str
    runs: int
    cells: int
    cached: int
    seconds: float | None  # to compute them, at the model's recent throughput; None: none measured
    format_cells: int = 0  # of `cells`, those of runs over the declared formats (ScoringRun.formats)

    @property
    def format_share(self) -> float:
        return self.format_cells / self.cells if self.cells else 0.0

    @property
    def to_compute(self) -> int:
        return self.cells - self.cached

    @property
    def duration(self) -> timedelta | None:
        return None if self.seconds is None else timedelta(seconds=round(self.seconds))


def plan_rows(plan: ScoringPlan) -> list[PlanRow]:
    """The plan per model: its runs, cells in scope, already scored, and the estimated time to compute."""
    rates = throughputs()
    rows = (
        plan.runs.values("variant__model_id", "variant__model__name")
        .annotate(runs=Count("id"), cells=Sum("total_cells"), cached=Sum("cached_cells"))
        .order_by("variant__model__name")
    )
    # Formats multiply cells, so the plan says how many of them are format cells (a JSON list: summed here).
    format_cells: dict[int, int] = {}
    for model_id, formats, total in plan.runs.values_list("variant__model_id", "formats", "total_cells"):
        if formats:
            format_cells[model_id] = format_cells.get(model_id, 0) + total
    result = []
    for row in rows:
        rate = rates.get(row["variant__model_id"], rates.get(None))
        to_compute = row["cells"] - row["cached"]
        result.append(
            PlanRow(
                model=row["variant__model__name"],
                runs=row["runs"],
                cells=row["cells"],
                cached=row["cached"],
                seconds=to_compute / rate if rate else None,
                format_cells=format_cells.get(row["variant__model_id"], 0),
            )
        )
    return result


def plan_text(plan: ScoringPlan) -> list[str]:
    """The plan as lines of text, for the score command."""
    lines = [f"Plan {plan.id} ({plan.get_trigger_display().lower()}, {plan.get_status_display().lower()}):"]
    for row in plan_rows(plan):
        took = f"about {row.duration}" if row.duration is not None else "no throughput measured yet"
        lines.append(
            f"  {row.model}: {row.runs} run(s), {row.cells:,} cells, {row.cached:,} already scored, "
            f"{row.to_compute:,} to compute ({took})"
            + (
                f"; {row.format_cells:,} of the cells ({row.format_share:.0%}) in declared formats"
                if row.format_cells
                else ""
            )
        )
    return lines


def scoring_plan_start(*, plan: ScoringPlan, by=None) -> int:
    """Send a plan's runs (on the bulk lane). Refused unless it is still planned. Returns how many."""
    with transaction.atomic():
        plan = ScoringPlan.objects.select_for_update().get(id=plan.id)
        if plan.status != ScoringPlan.Status.PLANNED:
            raise Conflict(
                f"Plan {plan.id} is {plan.get_status_display().lower()}; only a planned one starts."
            )
        plan.status = ScoringPlan.Status.STARTED
        plan.decided_by, plan.decided_at = by, timezone.now()
        plan.save(update_fields=["status", "decided_by", "decided_at"])
        ids = list(plan.runs.filter(status=JobStatus.PLANNED).values_list("id", flat=True))
        return jobs.start_planned(ScoringRun, ids)


def scoring_plan_discard(*, plan: ScoringPlan, by=None) -> int:
    """Drop a plan: its runs are cancelled without computing anything. Returns how many."""
    with transaction.atomic():
        plan = ScoringPlan.objects.select_for_update().get(id=plan.id)
        if plan.status != ScoringPlan.Status.PLANNED:
            raise Conflict(
                f"Plan {plan.id} is {plan.get_status_display().lower()}; only a planned one is discarded."
            )
        plan.status = ScoringPlan.Status.DISCARDED
        plan.decided_by, plan.decided_at = by, timezone.now()
        plan.save(update_fields=["status", "decided_by", "decided_at"])
        return jobs.cancel_planned(ScoringRun, list(plan.runs.values_list("id", flat=True)))
