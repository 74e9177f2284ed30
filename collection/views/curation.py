"""Curation: the queue of pending phrasings, each beside its nearest approved neighbours and its preview,
with approve / ask for an edit / reject, one at a time (htmx) or in bulk."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from collection import access, preview, selectors, services, similarity
from collection.forms import DecisionForm, ReviewForm, parse_ticked
from collection.models import Benchmark, Instruction
from core import roles
from core.errors import ApplicationError

QUEUE_PER_PAGE = 10


def _curator(request: HttpRequest) -> None:
    if not roles.is_curator(request.user):
        raise PermissionDenied("Only curators review phrasings.")


def _decorate(instructions: list[Instruction], user) -> None:
    """Attach what a curator needs beside each phrasing: neighbours, a preview, whether they may review it."""
    nearest = similarity.nearest_approved(instructions)
    for instruction in instructions:
        instruction.neighbours = nearest.get(instruction.id, [])
        draft = preview.build(
            task=instruction.task,
            template=instruction.template,
            labels=instruction.current_revision.labels,
            instances=preview.sample_instances(instruction.task, 1),
        )
        instruction.preview = draft
        instruction.reviewable = access.can_review(user, instruction)


def _own_total(user, pending) -> int:
    """How many of the pending phrasings the curator may not review (access.not_reviewable_by)."""
    return pending.filter(access.not_reviewable_by(user)).count()


@login_required
def queue(request: HttpRequest) -> HttpResponse:
    _curator(request)
    benchmark = request.GET.get("benchmark", "")
    pending = selectors.review_queue(request.user, benchmark_slug=benchmark)
    page = Paginator(pending, QUEUE_PER_PAGE).get_page(request.GET.get("page"))
    items = list(page)
    _decorate(items, request.user)
    context = {
        "page": page,
        "items": items,
        "benchmarks": Benchmark.objects.order_by("name"),
        "benchmark": benchmark,
        "pending_total": page.paginator.count,
        "own_total": _own_total(request.user, pending),
        "decisions": ReviewForm.base_fields["decision"].choices,
    }
    return render(request, "collection/curation_queue.html", context)


@login_required
@require_POST
def review(request: HttpRequest, instruction_id: int) -> HttpResponse:
    """One decision on one phrasing; htmx swaps the item for its outcome, a plain POST redirects back."""
    instruction = access.get_instruction_for_user(request.user, instruction_id, action=access.REVIEW)
    form = DecisionForm(request.POST)
    error, status = "", 200
    if not form.is_valid():
        error, status = "Choose approve, ask for an edit, or reject.", 400
        if "revision" in form.errors:
            error = "This form does not say which text you read; reload the queue and decide again."
    else:
        # The service decides which decisions the phrasing's status allows (say, one decided meanwhile) and
        # refuses a decision on a text the curator did not read (edited since).
        try:
            services.instruction_review(
                instruction=instruction,
                reviewer=request.user,
                status=form.cleaned_data["decision"],
                reason=form.cleaned_data["reason"],
                revision=form.cleaned_data["revision"],
            )
        except ApplicationError as exc:
            error, status = exc.message, exc.status_code
    if request.htmx:
        instruction.refresh_from_db()
        if error:
            _decorate([instruction], request.user)
        benchmark = request.POST.get("benchmark", "")
        pending = selectors.review_queue(request.user, benchmark_slug=benchmark)
        context = {
            "item": instruction,
            "error": error,
            "decisions": ReviewForm.base_fields["decision"].choices,
            "reason": request.POST.get("reason", ""),
            "benchmark": benchmark,
            # The heading's pending count, swapped out of band: it changes with each decision made in place.
            "pending_total": pending.count(),
            "own_total": _own_total(request.user, pending),
            "count_out_of_band": True,
        }
        return render(request, "collection/curation_queue.html#item", context, status=status)
    if error:
        messages.error(request, services.about(instruction.id, error))
    else:
        messages.success(request, f"Phrasing #{instruction.id}: {instruction.get_status_display().lower()}.")
    return redirect("curation_queue")


@login_required
@require_POST
def review_bulk(request: HttpRequest) -> HttpResponse:
    _curator(request)
    form = ReviewForm(request.POST)
    ticked = parse_ticked(request.POST.getlist("ids"))
    if not form.is_valid() or not ticked:
        messages.error(request, "Tick the phrasings to review and choose a decision.")
        return redirect("curation_queue")
    ids = list(ticked)
    chosen = (
        access.instructions_visible_to(request.user)
        .filter(id__in=ids)
        .select_related("task", "current_revision")
        .order_by("id")
    )
    outcomes = services.instructions_review_bulk(
        instructions=list(chosen),
        reviewer=request.user,
        status=form.cleaned_data["decision"],
        reason=form.cleaned_data["reason"],
        revisions=ticked,
    )
    done = [o for o in outcomes if not o.error]
    if done:
        verb = Instruction.Status(form.cleaned_data["decision"]).label.lower()
        messages.success(request, f"{len(done)} phrasing(s): {verb}.")
    for outcome in outcomes:
        if outcome.error:
            messages.error(request, services.about(outcome.instruction.id, outcome.error))
    skipped = len(set(ids)) - len(outcomes)
    if skipped:
        messages.warning(request, f"{skipped} phrasing(s) no longer exist and were left out.")
    return redirect("curation_queue")
