"""Bulk work planned over the budget (evaluation/runs/budget.py): the plans, one plan's cost per model, and the
admin's start and discard buttons."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from core import roles
from core.errors import ApplicationError
from evaluation.access import get_plan_for_user, plans_visible_to
from evaluation.models import named_variants
from evaluation.runs import budget

PLANS_PER_PAGE = 50


def plan_list(request: HttpRequest) -> HttpResponse:
    plans = plans_visible_to(request.user).select_related("created_by")[:PLANS_PER_PAGE]
    rows = [(plan, budget.plan_rows(plan)) for plan in plans]
    return render(
        request, "evaluation/plan_list.html", {"rows": rows, "budget_cells": settings.SCORING_BUDGET_CELLS}
    )


def plan_detail(request: HttpRequest, plan_id: int) -> HttpResponse:
    plan = get_plan_for_user(request.user, plan_id)
    runs = named_variants(plan.runs.all()).select_related("task__benchmark", "instruction", "created_by")
    return render(
        request,
        "evaluation/plan_detail.html",
        {
            "plan": plan,
            "rows": budget.plan_rows(plan),
            "runs": runs.order_by("id")[:200],
            "can_start": roles.can_start_plans(request.user),
        },
    )


@login_required
@require_POST
def plan_start(request: HttpRequest, plan_id: int) -> HttpResponse:
    plan = get_plan_for_user(request.user, plan_id, manage=True)
    try:
        sent = budget.scoring_plan_start(plan=plan, by=request.user)
        messages.success(request, f"Plan {plan.id} started: {sent} run(s) sent to the bulk lane.")
    except ApplicationError as exc:
        messages.error(request, str(exc))
    return redirect("plan_detail", plan_id=plan.id)


@login_required
@require_POST
def plan_discard(request: HttpRequest, plan_id: int) -> HttpResponse:
    plan = get_plan_for_user(request.user, plan_id, manage=True)
    try:
        dropped = budget.scoring_plan_discard(plan=plan, by=request.user)
        messages.success(request, f"Plan {plan.id} discarded: {dropped} run(s) cancelled, nothing computed.")
    except ApplicationError as exc:
        messages.error(request, str(exc))
    return redirect("plan_detail", plan_id=plan.id)
