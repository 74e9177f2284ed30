from django.contrib.auth import login
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from core import roles, services
from core.forms import SignUpForm
from core.models import WorkerPing


def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("home")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            user = form.save()
            services.user_role_set(user=user, role=roles.AUTHOR)
        login(request, user)
        return redirect("home")
    return render(request, "registration/signup.html", {"form": form})


def healthz(request: HttpRequest) -> HttpResponse:
    """For load balancers and the bench scripts' baseline: no database, no template."""
    return HttpResponse("ok", content_type="text/plain")


def status(request: HttpRequest) -> HttpResponse:
    """Is a worker answering? Shows the latest ping; htmx polls the fragment until it is answered."""
    ping = WorkerPing.objects.first()
    template = "core/status.html#ping" if request.htmx else "core/status.html"
    return render(request, template, {"ping": ping})


@require_POST
def status_ping(request: HttpRequest) -> HttpResponse:
    ping = services.worker_ping_send()
    if request.htmx:
        return render(request, "core/status.html#ping", {"ping": ping})
    return redirect("status")
