"""A task's evaluation sample: large tasks score each phrasing on a sample (EVAL_SAMPLE_SIZE), and all
instances are one click away. The view changes the task (collection's service) and then queues what active
models now lack, as bulk work within the budget (evaluation/runs/budget.py), so it belongs to evaluation."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from collection import services
from collection.selectors import task_get
from core import roles
from core.errors import ApplicationError
from evaluation.models import RunTrigger
from evaluation.runs import budget, scoring


@login_required
@require_POST
def task_sample(request: HttpRequest, benchmark_slug: str, task_slug: str) -> HttpResponse:
    """POST size=all (every eval instance) or size=default (a sample of EVAL_SAMPLE_SIZE)."""
    task = task_get(benchmark_slug, task_slug)
    if not roles.can_manage_tasks(request.user):
        raise PermissionDenied("Only admins can change a task's evaluation sample.")
    size = None if request.POST.get("size") == "all" else (settings.EVAL_SAMPLE_SIZE or None)
    try:
        services.task_eval_sample_set(task=task, size=size, by=request.user)
    except ApplicationError as exc:
        messages.error(request, str(exc))
        return redirect("task_detail", benchmark_slug, task_slug)
    runs = scoring.scoring_for_active_models(trigger=RunTrigger.MANUAL, by=request.user, task=task)
    what = "all its instances" if size is None else f"a sample of {size} instances"
    messages.success(request, f"{task.name} now scores each phrasing on {what}. {budget.bulk_summary(runs)}")
    return redirect("task_detail", benchmark_slug, task_slug)
