"""Curators upload a file of phrasings (the generic CSV or JSONL import format) in the browser. Every row
is checked before anything is written; the phrasings land in the review queue as pending."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt, csrf_protect

from collection.forms import UploadForm
from collection.importers.base import ImportFailed
from collection.importers.instructions import import_instructions_upload
from core import roles
from core.errors import RateLimited, response_headers


class UploadLimit(FileUploadHandler):
    """Stops reading a file once it passes UPLOAD_MAX_BYTES, so an oversized upload is never stored whole
    (Django would otherwise spool it to disk before the view sees it)."""

    def __init__(self, request=None) -> None:
        super().__init__(request)
        self.received = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received += len(raw_data)
        if self.received > settings.UPLOAD_MAX_BYTES:
            self.request.upload_too_large = True
            raise StopUpload(connection_reset=False)  # Django reads and drops the rest of the body
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None  # the next handler builds the file


def _context(form: UploadForm, error: str = "") -> dict:
    return {
        "form": form,
        "error": error,
        "max_bytes": settings.UPLOAD_MAX_BYTES,
        "max_rows": settings.UPLOAD_MAX_ROWS,
    }


# csrf_exempt here and csrf_protect below, as Django documents: the upload handler must be installed before
# the CSRF check reads the body. The check still runs on every POST.
@csrf_exempt
@login_required
def upload(request: HttpRequest) -> HttpResponse:
    if not roles.is_curator(request.user):
        raise PermissionDenied("Only curators upload phrasings.")
    if request.method == "POST":
        request.upload_handlers.insert(0, UploadLimit(request))
    return _upload(request)


@csrf_protect
def _upload(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return render(request, "collection/phrasing_upload.html", _context(UploadForm()))
    form = UploadForm(request.POST, request.FILES)
    if getattr(request, "upload_too_large", False):
        error = (
            f"The file is over the upload limit of {settings.UPLOAD_MAX_BYTES:,} bytes. Nothing was imported."
        )
    elif not form.is_valid():
        error = " ".join(str(e) for errors in form.errors.values() for e in errors)
    else:
        upload_file = form.cleaned_data["file"]
        try:
            report = import_instructions_upload(
                name=upload_file.name, data=upload_file.read(), by=request.user
            )
        except ImportFailed as exc:
            error = f"{exc}\nNothing was imported."
        except RateLimited as exc:
            response = render(
                request, "collection/phrasing_upload.html", _context(form, exc.message), status=429
            )
            for name, value in response_headers(exc).items():
                response[name] = value
            return response
        else:
            messages.success(request, f"Imported {upload_file.name}: " + "; ".join(report.lines()) + ".")
            return redirect("curation_queue")
    return render(request, "collection/phrasing_upload.html", _context(form, error), status=400)
