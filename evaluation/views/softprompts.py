"""Soft-prompt pages: a training's progress, loss curve, outcome on its held-out phrasings and what it saw;
train, cancel and retry."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from collection.access import revisions_visible_to
from core import roles
from core.job_actions import job_page_action
from core.jobs import JobStatus
from evaluation import split
from evaluation.access import get_model_for_user, get_softprompt_for_user
from evaluation.leaderboards import selectors
from evaluation.models import RunTrigger, SoftPrompt
from evaluation.robustness import calibration, softprompts
from evaluation.robustness.outcome import soft_prompt_outcome

TERMS = [("loss", "Total"), ("ce", "CE"), ("kl", "KL"), ("rep", "1 − cos"), ("consistency", "Consistency")]


def _curve_chart(soft: SoftPrompt) -> dict:
    """The loss terms per optimiser step (plotly.js figure JSON)."""
    steps = [r["step"] for r in soft.curve]
    data = [
        {
            "type": "scatter",
            "mode": "lines",
            "name": label,
            "x": steps,
            "y": [round(r[key], 5) for r in soft.curve],
        }
        for key, label in TERMS
        # Curves recorded before the consistency objective existed have no such term.
        if all(key in r for r in soft.curve)
    ]
    # With λ_kl and λ_rep at 0 (or small), Total equals CE and a line drawn under it would vanish: Total is
    # drawn last, on top, dark and dashed, so CE shows through its gaps; the legend still lists it first.
    for trace in data:
        if trace["name"] == "Total":
            trace.update(line={"color": "#1d2430", "width": 2.5, "dash": "dash"}, legendrank=1)
    data.sort(key=lambda trace: trace["name"] == "Total")
    layout = {
        "xaxis": {"title": {"text": "step"}},
        "yaxis": {"title": {"text": "loss"}},
        "height": 340,
        "margin": {"t": 20},
    }
    checks = [r for r in soft.curve if "val_kappa" in r]
    if checks:  # early stopping's checks, every few steps, on an axis of their own
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": "Agreement κ (held-out, unlabeled)",
                "x": [r["step"] for r in checks],
                "y": [round(r["val_kappa"], 4) for r in checks],
                "yaxis": "y2",
            }
        )
        layout["yaxis2"] = {"title": {"text": "κ"}, "overlaying": "y", "side": "right", "range": [-1, 1]}
    return {"data": data if steps else [], "layout": layout}


def early_stopping(soft: SoftPrompt) -> dict | None:
    """What early stopping did, from the curve: the step it stopped at and the step whose prompt was kept."""
    last = soft.curve[-1] if soft.curve else {}
    if "kept_step" not in last:
        return None
    kappas = {r["step"]: r["val_kappa"] for r in soft.curve if "val_kappa" in r}
    return {
        "stopped": last["step"],
        "planned": soft.config.get("steps"),
        "kept": last["kept_step"],
        "kappa": kappas.get(last["kept_step"]),  # None for step 0 (the initial prompt)
        "patience": soft.config.get("patience"),
    }


def _outcome_rows(soft: SoftPrompt) -> list[dict]:
    """Base vs this soft prompt on its held-out unobserved phrasings, per task and macro-averaged, with the
    improvement's paired bootstrap interval (evaluation/robustness/outcome.py). Empty until it is scored."""
    outcome = soft_prompt_outcome(soft)
    if outcome is None:
        return []

    def row(name: str, base: float, improvement) -> dict:
        # Fractions: the page renders them with the figure component (evaluation/templatetags/figures.py).
        return {
            "task": name,
            "cells": f"{improvement.phrasings} x {improvement.instances}",
            "base": base,
            "soft": base + improvement.difference,
            "delta": improvement.difference,
            "ci": tuple(improvement.ci),
            "excludes_zero": improvement.excludes_zero,
        }

    rows = [row(task, outcome.base_per_task[task], i) for task, i in sorted(outcome.per_task.items())]
    return [*rows, row("macro average", outcome.base_accuracy, outcome.macro)]


def softprompt_detail(request: HttpRequest, soft_prompt_id: int) -> HttpResponse:
    soft = get_softprompt_for_user(request.user, soft_prompt_id)
    admin = roles.is_admin(request.user)
    # The artifact is a directory on the workers' disks and an error may name the model's local path: both
    # are for admins, as model sources are.
    error = soft.error if admin else soft.model.without_source(soft.error)
    context = {
        "soft": soft,
        "curve_chart": _curve_chart(soft),
        "early_stopping": early_stopping(soft),
        "error": error,
        "show_artifact": admin,
    }
    if request.htmx:
        return render(request, "evaluation/softprompt_detail.html#progress", context)
    # Phrasings trained on or held out may have been retired since: listed only to those who see them.
    revisions = revisions_visible_to(request.user).select_related(
        "instruction__task", "instruction__collection"
    )
    context.update(
        outcome=_outcome_rows(soft) if soft.status == JobStatus.SUCCEEDED else [],
        training=revisions.filter(soft_prompts_trained=soft).order_by("id"),
        heldout=revisions.filter(soft_prompts_heldout=soft).order_by("id"),
        seen_pairs=sum(len(pairs) for pairs in soft.seen.values()),
        trained_now_heldout=split.trained_on_heldout(soft) if soft.status == JobStatus.SUCCEEDED else [],
        runs=selectors.run_list(request.user).filter(variant=soft.variant) if soft.variant_id else [],
    )
    return render(request, "evaluation/softprompt_detail.html", context)


@login_required
@require_POST
def model_align(request: HttpRequest, name: str) -> HttpResponse:
    """Queue a training of the model's soft prompt (admins) with the chosen method, or show the one already
    under way. No method given: the model's last settings, as before."""
    model = get_model_for_user(request.user, name, manage=True)
    method = request.POST.get("method") or ""
    if method and method not in softprompts.ALIGN_METHODS:
        messages.error(
            request, f"Unknown method {method!r}; choose one of {', '.join(softprompts.ALIGN_METHODS)}."
        )
        return redirect("model_detail", name=model.name)
    config = softprompts.method_config(model, method) if method else None
    soft = softprompts.softprompt_queue(
        model=model, trigger=RunTrigger.MANUAL, by=request.user, config=config
    )
    messages.success(
        request, f"Soft prompt #{soft.id} for {model.name}: {soft.get_status_display().lower()}."
    )
    return redirect("softprompt_detail", soft_prompt_id=soft.id)


@login_required
@login_required
@require_POST
def model_calibrate(request: HttpRequest, name: str) -> HttpResponse:
    """Make the model's batch-calibrated variant (admins) and calibrate it in a worker: the inference-only
    baseline to the soft prompts, on the same held-out phrasings."""
    model = get_model_for_user(request.user, name, manage=True)
    calibration.calibration_queue(model=model)
    messages.success(
        request,
        f"Batch calibration of {model.name} queued: its held-out phrasings the base model has scored in full "
        "are calibrated, and the rest as they are scored.",
    )
    return redirect("model_detail", name=model.name)


@login_required
@require_POST
def softprompt_cancel(request: HttpRequest, soft_prompt_id: int) -> HttpResponse:
    return job_page_action(
        request, get_softprompt_for_user(request.user, soft_prompt_id, manage=True), "cancel"
    )


@login_required
@require_POST
def softprompt_retry(request: HttpRequest, soft_prompt_id: int) -> HttpResponse:
    return job_page_action(
        request, get_softprompt_for_user(request.user, soft_prompt_id, manage=True), "retry"
    )
