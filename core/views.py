import logging

from django.contrib.auth import login
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template import loader
from django.views import defaults
from django.views.decorators.http import require_POST

from core import roles, services, worker_status
from core.forms import SignUpForm
from core.models import WorkerPing
from core.parsing import InvalidParameter

log = logging.getLogger(__name__)


def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("home")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            user = form.save()
            services.user_role_set(user=user, role=roles.AUTHOR)
        # Named, as Django asks when there are several backends (django-axes' comes first; it checks no password).
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("home")
    return render(request, "registration/signup.html", {"form": form})


def healthz(request: HttpRequest) -> HttpResponse:
    """For load balancers and the bench scripts' baseline: no database, no template."""
    return HttpResponse("ok", content_type="text/plain")


def status(request: HttpRequest) -> HttpResponse:
    """Are workers there, and what is each doing? Their heartbeats tell a busy worker (which cannot answer a
    ping until its job ends) from a missing one. Every running job with who runs it (a worker, or a command
    running it in its own process), and a plain warning when queued jobs have no worker to take them. The
    latest ping too; htmx polls both fragments."""
    ping = WorkerPing.objects.first()
    workers = worker_status.worker_states()
    states = {w.state for w in workers}
    context = {
        "ping": ping,
        "workers": workers,
        "workers_busy": "busy" in states and "idle" not in states,
        "backlog": worker_status.backlog(),
        "running": worker_status.running_jobs(),
        "queue_warnings": worker_status.queue_warnings(workers),
        "idle_silent_seconds": worker_status.IDLE_SILENT_SECONDS,
    }
    if request.htmx:
        fragment = "workers" if request.GET.get("part") == "workers" else "ping"
        return render(request, f"core/status.html#{fragment}", context)
    return render(request, "core/status.html", context)


@require_POST
def status_ping(request: HttpRequest) -> HttpResponse:
    ping = services.worker_ping_send()
    if request.htmx:
        return render(request, "core/status.html#ping", {"ping": ping})
    return redirect("status")


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """400 for a parameter that does not parse, saying which and why. Django's other 400s (a suspicious
    request: a bad Host header, too many fields) keep Django's plain page, which names nothing."""
    if isinstance(exception, InvalidParameter):
        context = {"message": str(exception), "kept": _kept(request)}
        return render(request, "core/bad_request.html", context, status=400)
    return defaults.bad_request(request, exception)


def _kept(request: HttpRequest) -> str:
    """A refused form's phrasing or reason, to show back so that it is not lost (templates/_kept.html). NUL
    characters, which a 400 can be for, are dropped: the text is for copying."""
    if request.method != "POST":
        return ""
    text = request.POST.get("template") or request.POST.get("reason") or ""
    return text.replace("\x00", "")


def _is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith("/api/")


# What a refusal says when it was raised without a reason (Django's own decorators raise it so).
NOT_ALLOWED = "Your account may not do this here."


# Django's CSRF refusal names its reason for developers ("CSRF token from POST incorrect"); a user needs what to do.
CSRF_REFUSED = (
    "This form was sent with an outdated security token: the page was opened before a login or logout, "
    "perhaps in another tab. Reload the page and send it again."
)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: the refusal in the site's layout, as every 403 (permission_denied)."""
    log.warning("CSRF refused %s: %s", request.path, reason)
    return permission_denied(request, PermissionDenied(CSRF_REFUSED))


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    """403 in the site's layout, saying why (our refusals carry a sentence for the user). A refused form's
    phrasing or reason is shown back, so that it is not lost (an edit sent after the phrasing was decided, a
    form sent with an outdated token). Under /api/ a JSON answer, as DRF gives inside its views."""
    message = str(exception) or NOT_ALLOWED
    if _is_api(request):
        return JsonResponse({"detail": message}, status=403)
    return render(request, "403.html", {"message": message, "kept": _kept(request)}, status=403)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """404 in the site's layout, rendered without the request: no context processors, so no session, user or
    role query, and a page that is not there never needs the database to say so. Under /api/ a JSON answer,
    as DRF gives for an unknown id inside a view (this one is for a path no route matches)."""
    if _is_api(request):
        return JsonResponse({"detail": "Not found."}, status=404)
    body = loader.render_to_string("404.html")
    return HttpResponse(body, status=404)


# What a 500 shows if even 500.html cannot be rendered (a broken template or static storage): no layout.
PLAIN_SERVER_ERROR = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Server error · PhraseBench</title>'
    '</head><body><h1>Server error</h1><p>Something went wrong on our side. <a href="/">Back home</a>.</p>'
    "</body></html>"
)


def server_error(request: HttpRequest) -> HttpResponse:
    """500 in the site's layout, rendered with no context at all (as Django's own handler does): whatever
    failed (the database, a context processor) is not asked again. Under /api/ a JSON answer."""
    if _is_api(request):
        return JsonResponse({"detail": "Server error."}, status=500)
    try:
        body = loader.render_to_string("500.html")
    except Exception:  # the error page must answer whatever broke
        log.exception("Could not render 500.html; answered with the plain page.")
        body = PLAIN_SERVER_ERROR
    return HttpResponse(body, status=500)
