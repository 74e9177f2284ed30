"""Authoring: write a phrasing with a live preview (in a chosen model's prompt format) and a near-duplicate
check, edit it while it waits for review, and follow what became of one's phrasings and their results."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from collection import access, preview, selectors, services, similarity
from collection.forms import PhrasingForm
from collection.models import Task
from core import roles
from core.errors import ApplicationError, response_headers
from core.parsing import id_param
from evaluation.leaderboards import selectors as evaluation_selectors
from evaluation.models import LanguageModel
from evaluation.prompt_formats import preview_wrapper


def _models():
    return list(LanguageModel.objects.filter(is_active=True).order_by("name"))


def _authorable_task(request: HttpRequest, benchmark_slug: str, task_slug: str) -> Task:
    task = selectors.task_get(benchmark_slug, task_slug)
    if not roles.can_submit(request.user):
        raise PermissionDenied("Sign up or log in to write phrasings.")
    if not task.input_fields:
        raise Http404("This task takes no phrasings of its own.")
    return task


def _preview_context(form: PhrasingForm, user, *, exclude_id: int | None = None) -> dict:
    """What the preview panel shows for the form's current draft: validation, samples, and the similar
    phrasings the user may see (another author's phrasing under review is never shown)."""
    if not form.is_valid():
        return {"draft": None}
    template = form.cleaned_data["template"]
    wrap, format_name, format_note = preview_wrapper(form.model())
    draft = preview.build(
        task=form.task,
        template=template,
        labels=form.labels(),
        answers=form.answers(),
        wrap=wrap,
        format_name=format_name,
        format_note=format_note,
    )
    similar = similarity.similar_phrasings(
        task=form.task, template=template, user=user, exclude_id=exclude_id
    )
    # Approved neighbours' accuracy, so a similarity is read as a similarity and the author sees how close
    # wordings did.
    approved = [s.instruction.current_revision_id for s in similar if s.instruction.status == "approved"]
    return {
        "draft": draft,
        "similar": similar,
        "neighbour_accuracy": evaluation_selectors.revision_mean_accuracy(approved) if approved else {},
        "exact": next((s for s in similar if s.exact), None),
        "near": [s for s in similar if s.near and not s.exact],
        "similar_pending": similar.pending,
    }


def _form_page(request: HttpRequest, context: dict) -> HttpResponse:
    """The form again; after a refusal with the refusal's status (429 and Retry-After for the rate limit)."""
    refusal = context.get("refusal")
    status = refusal.status_code if refusal else 200
    response = render(request, "collection/phrasing_form.html", context, status=status)
    if refusal:
        for name, value in response_headers(refusal).items():
            response[name] = value
    return response


@login_required
def phrasing_new(request: HttpRequest, benchmark_slug: str, task_slug: str) -> HttpResponse:
    task = _authorable_task(request, benchmark_slug, task_slug)
    form = PhrasingForm(request.POST or None, task=task, models=_models())
    context = {"task": task, "form": form, "samples": preview.sample_instances(task)}
    if request.method == "POST":
        if form.is_valid():
            try:
                services.instruction_submit(
                    task=task,
                    template=form.cleaned_data["template"],
                    labels=form.labels(),
                    answers=form.answers(),
                    tags=form.cleaned_data["tags"],
                    author=request.user,
                )
            except ApplicationError as exc:
                context["refusal"] = exc
            else:
                messages.success(request, f"Thanks! Your phrasing for {task.name} is waiting for a curator.")
                return redirect("my_phrasings")
        context.update(_preview_context(form, request.user))
    return _form_page(request, context)


@login_required
@require_POST
def phrasing_preview(request: HttpRequest, benchmark_slug: str, task_slug: str) -> HttpResponse:
    """The htmx preview panel, re-rendered as the author types (debounced in the page)."""
    task = _authorable_task(request, benchmark_slug, task_slug)
    form = PhrasingForm(request.POST, task=task, models=_models())
    exclude_id = id_param(request.POST, "instruction")
    context = {"task": task, "form": form, **_preview_context(form, request.user, exclude_id=exclude_id)}
    # The check's verdict goes to the field it is about, out of band (templates/collection/phrasing_form.html).
    context["check_at_field"] = True
    return render(request, "collection/phrasing_form.html#preview", context)


@login_required
def phrasing_edit(request: HttpRequest, instruction_id: int) -> HttpResponse:
    # Decided while its author was editing, say: the 403 page (core.views.permission_denied) gives the text back.
    instruction = access.get_instruction_for_user(request.user, instruction_id, action=access.EDIT)
    task = instruction.task
    labels = instruction.current_revision.labels or []
    initial = {
        "template": instruction.template,
        "answers": instruction.current_revision.answers or None,
        "tags": list(instruction.tags.values_list("slug", flat=True)),
        **{f"label_{i}": word for i, word in enumerate(labels)},
    }
    form = PhrasingForm(request.POST or None, initial=initial, task=task, models=_models())
    context = {
        "task": task,
        "form": form,
        "instruction": instruction,
        "samples": preview.sample_instances(task),
    }
    if request.method == "POST":
        if form.is_valid():
            try:
                services.instruction_edit(
                    instruction=instruction,
                    template=form.cleaned_data["template"],
                    labels=form.labels(),
                    answers=form.answers(),
                    tags=form.cleaned_data["tags"],
                    by=request.user,
                )
            except ApplicationError as exc:
                context["refusal"] = exc
            else:
                messages.success(request, "Saved. Your phrasing is back in the review queue.")
                return redirect("my_phrasings")
        context.update(_preview_context(form, request.user, exclude_id=instruction.id))
    return _form_page(request, context)


MY_PHRASINGS_PER_PAGE = 20


@login_required
def my_phrasings(request: HttpRequest) -> HttpResponse:
    """The user's phrasings: status, the curator's reason, and once scored their accuracy per model, rank
    among the task's phrasings and effect on the task's spread. Polls while any of them is being scored."""
    page = Paginator(selectors.author_phrasings(request.user), MY_PHRASINGS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    impacts = evaluation_selectors.phrasing_impacts(list(page))
    progress = evaluation_selectors.phrasing_progress(list(page))
    for instruction in page:
        instruction.impacts = impacts.get(instruction.id, [])
        instruction.progress = progress.get(instruction.id)
        instruction.editable = access.can_edit_instruction(request.user, instruction)
    context = {"page": page, "scoring": any(i.progress for i in page)}
    template = "collection/my_phrasings.html#list" if request.htmx else "collection/my_phrasings.html"
    return render(request, template, context)
