from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from core import roles
from core.errors import ApplicationError
from evaluation import selectors, services
from evaluation.models import RunStatus, ScoringRun

RUNS_PER_PAGE = 50


def get_run_for_user(request: HttpRequest, run_id: int, *, manage: bool = False) -> ScoringRun:
    """Anyone may look at a run; only curators and admins may act on it."""
    run = selectors.run_get(run_id)
    if manage and not roles.can_manage_runs(request.user):
        raise PermissionDenied("Only curators and admins can cancel or retry runs.")
    return run


def model_list(request: HttpRequest) -> HttpResponse:
    return render(request, "evaluation/model_list.html", {"models": selectors.model_list()})


def model_detail(request: HttpRequest, name: str) -> HttpResponse:
    model = selectors.model_get(name)
    runs = selectors.run_list(model=model)[:RUNS_PER_PAGE]
    return render(request, "evaluation/model_detail.html", {"model": model, "runs": runs})


@login_required
@require_POST
def model_score(request: HttpRequest, name: str) -> HttpResponse:
    """Queue whatever approved phrasings the model has not scored yet."""
    if not roles.can_manage_models(request.user):
        raise PermissionDenied("Only admins can start scoring by hand.")
    model = selectors.model_get(name)
    runs = services.language_model_score_missing(model=model, by=request.user)
    if runs:
        cells = sum(run.to_compute for run in runs)
        messages.success(request, f"Queued {len(runs)} run(s): {cells} cell(s) to compute.")
    else:
        messages.info(request, "Nothing to do: every approved phrasing is already scored on this model.")
    return redirect("model_detail", name=model.name)


def run_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status")
    runs = selectors.run_list(status=status)[:RUNS_PER_PAGE]
    return render(
        request, "evaluation/run_list.html", {"runs": runs, "status": status, "statuses": RunStatus.choices}
    )


def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    run = get_run_for_user(request, run_id)
    if request.htmx:
        return render(request, "evaluation/run_detail.html#progress", {"run": run})
    revisions = run.revisions.select_related("instruction__task", "instruction__collection").order_by("id")
    return render(
        request,
        "evaluation/run_detail.html",
        {"run": run, "revisions": revisions[:100], "revision_count": revisions.count()},
    )


@login_required
@require_POST
def run_cancel(request: HttpRequest, run_id: int) -> HttpResponse:
    run = get_run_for_user(request, run_id, manage=True)
    try:
        services.scoring_run_cancel(run=run)
        messages.success(request, f"Run {run.id} cancelled. Cells it scored are kept.")
    except ApplicationError as exc:
        messages.error(request, str(exc))
    return redirect("run_detail", run_id=run.id)


@login_required
@require_POST
def run_retry(request: HttpRequest, run_id: int) -> HttpResponse:
    run = get_run_for_user(request, run_id, manage=True)
    try:
        services.scoring_run_retry(run=run)
        messages.success(request, f"Run {run.id} queued again; it scores only the missing cells.")
    except ApplicationError as exc:
        messages.error(request, str(exc))
    return redirect("run_detail", run_id=run.id)
