"""Dataset releases on the site (docs/releases.md): the list, a release's page with its files and how to load
it, and, for admins, the form that asks a worker for one. The same as /api/releases/ and admin's "Release
exports"; evaluation/releases/export_jobs.py queues and runs the export, and the API serves the files."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from collection.models import Benchmark
from core import roles
from core.errors import ApplicationError, response_headers
from core.jobs import JobStatus
from core.parsing import parse_id
from evaluation import access
from evaluation.releases import export_jobs
from evaluation.releases.export import DEFAULT_LICENSE

RELEASES_PER_PAGE = 50


@require_http_methods(["GET", "POST"])
def release_list(request: HttpRequest) -> HttpResponse:
    """Every release; POST (admins) asks for one, with the arguments the command takes."""
    may_export = roles.can_export_releases(request.user)
    given = {
        "benchmarks": request.POST.getlist("benchmarks"),
        "name": request.POST.get("name", "phrasebench").strip(),
        "version": request.POST.get("version", "").strip(),
        "license": request.POST.get("license", DEFAULT_LICENSE).strip(),
    }
    error = None
    if request.method == "POST":
        if not may_export:
            raise PermissionDenied("Only admins can ask for a dataset release.")
        try:
            export = export_jobs.release_export_request(**given, by=request.user)
        except ApplicationError as exc:
            error = exc
        else:
            messages.success(
                request,
                f"Release {export.directory} asked for: a worker writes it; this page says when it is done.",
            )
            return redirect("release_detail", export.id)
    page = Paginator(access.releases_visible_to(request.user), RELEASES_PER_PAGE).get_page(
        request.GET.get("page")
    )
    return _render_refusal(
        request,
        "evaluation/release_list.html",
        {
            "page": page,
            "may_export": may_export,
            "benchmarks": Benchmark.objects.order_by("slug") if may_export else [],
            "given": given,
        },
        error,
    )


def _render_refusal(request: HttpRequest, template: str, context: dict, error: ApplicationError | None):
    """The page, with a refused form's error in `error` and its status and headers on the answer."""
    response = render(
        request, template, context | {"error": error}, status=error.status_code if error else 200
    )
    for name, value in (response_headers(error) if error else {}).items():
        response[name] = value
    return response


@require_http_methods(["GET", "POST"])
def release_detail(request: HttpRequest, export_id: str) -> HttpResponse:
    """A release, its files and how to load it; POST (admins, with `confirm` ticked) deletes a finished one and
    its files."""
    found = parse_id(export_id)
    export = access.releases_visible_to(request.user).filter(pk=found).first() if found is not None else None
    if export is None:
        raise Http404("No such release.")
    may_delete = roles.can_export_releases(request.user)
    error = None
    if request.method == "POST":
        if not may_delete:
            raise PermissionDenied("Only admins can delete a dataset release.")
        try:
            if request.POST.get("confirm") != "yes":
                raise ApplicationError(
                    "Tick the box to confirm that the release and its files are to be deleted."
                )
            export_jobs.release_export_delete(export)
        except ApplicationError as exc:
            error = exc
        else:
            messages.success(request, f"Release {export.directory} and its files were deleted.")
            return redirect("release_list")
    files = [
        entry | {"url": reverse("releaseexport-file", args=[export.pk, entry["path"]])}
        for entry in export_jobs.release_files(export)
    ]
    configs = sorted({f["path"].split("/")[0] for f in files if f["path"].endswith(".parquet")})
    return _render_refusal(
        request,
        "evaluation/release_detail.html",
        {
            "export": export,
            "files": files,
            "configs": configs,
            "total": sum(f["bytes"] or 0 for f in files),
            # Finished, but its directory is gone from RELEASES_DIR (moved or deleted by hand).
            "gone": export.status == JobStatus.SUCCEEDED and not files,
            "may_delete": may_delete and not export.is_active,
        },
        error,
    )
