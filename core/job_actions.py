"""What people do to jobs, the same for every kind: cancel and retry from a page, the API and admin. Each reads
the kind's declaration (`Model.job`, a core.jobs.JobKind) and acts through core/jobs.py's cancel() and
retry(), so the rules (which states, the same row or a new one) and the messages are the kind's, once.

Who may act is not decided here: a page and the API look the job up through the kind's
`get_<thing>_for_user(..., manage=True)` first, and admin is for admins."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from drf_spectacular.utils import extend_schema
from rest_framework.decorators import action
from rest_framework.response import Response

from core import jobs
from core.errors import ApplicationError

# Each action: the service, and the declaration's message for a page once it is done.
ACTIONS: dict[str, tuple[Callable[[jobs.Job], jobs.Job], str]] = {
    "cancel": (jobs.cancel, "cancelled"),
    "retry": (jobs.retry, "retried"),
}


def job_page_action(request: HttpRequest, job: jobs.Job, name: str) -> HttpResponse:
    """A page's Cancel or Retry button (`name`) on a job the user may act on: back to the job's page (a retried
    job's new one, where retrying makes one) with the kind's message, or the reason it was refused."""
    service, message = ACTIONS[name]
    try:
        job = service(job)
        messages.success(request, getattr(type(job).job, message).format(job=job))
    except ApplicationError as exc:
        messages.error(request, str(exc))
    return redirect(job.get_absolute_url())


class JobActionsMixin:
    """POST `<id>/cancel/` and `<id>/retry/` for an API viewset of one job kind, answered with the job as the
    viewset serializes it; a refusal is a 400 with the reason (core/api.py). The viewset's get_object()
    decides who may act."""

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        return Response(self.get_serializer(jobs.cancel(self.get_object())).data)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        return Response(self.get_serializer(jobs.retry(self.get_object())).data)


def act_on_each(model_admin, request, queryset, act, verb: str, noun: str) -> None:
    """An admin action that calls a service on each selected row, reporting the rows it refused."""
    done = 0
    for obj in queryset:
        try:
            act(obj)
            done += 1
        except ApplicationError as exc:
            model_admin.message_user(request, f"{noun.capitalize()} {obj.id}: {exc}", level=messages.WARNING)
    model_admin.message_user(request, f"{verb} {done} {noun}(s).")


class JobAdmin(admin.ModelAdmin):
    """Admin for a job kind: "Cancel selected ..." and "Retry selected ..." where its declaration allows them,
    each row on its own (a row refused is reported with the reason)."""

    actions = ["cancel", "retry"]

    def get_actions(self, request):
        actions = super().get_actions(request)
        kind = self.model.job
        note = f" ({kind.retry_note})" if kind.retry_note else ""
        labels = {
            "cancel": f"Cancel selected {kind.noun}s" if kind.cancellable else None,
            "retry": f"Retry selected {kind.noun}s{note}" if kind.retry else None,
        }
        for name, label in labels.items():
            if name not in actions:
                continue
            if label is None:
                del actions[name]
            else:
                actions[name] = (actions[name][0], name, label)
        return actions

    @admin.action(description="Cancel selected jobs")
    def cancel(self, request, queryset):
        act_on_each(self, request, queryset, jobs.cancel, "Cancelled", self._label())

    @admin.action(description="Retry selected jobs")
    def retry(self, request, queryset):
        act_on_each(self, request, queryset, jobs.retry, "Queued again", self._label())

    def _label(self) -> str:
        return self.model.job.label or self.model.job.noun
