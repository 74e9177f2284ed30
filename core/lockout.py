"""What django-axes calls when it throttles logins (settings AXES_*): whose address a login comes from, and
the page a locked-out login gets."""

from __future__ import annotations

import math

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def client_ip(request: HttpRequest) -> str:
    """The client's address. Behind our TLS proxy (BEHIND_TLS_PROXY) every request comes from the proxy, so
    the address is the last one in X-Forwarded-For: the one the proxy appended, which a client cannot forge
    (the entries before it are whatever the client sent)."""
    if settings.BEHIND_TLS_PROXY:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        if forwarded[-1]:
            return forwarded[-1]
    return request.META.get("REMOTE_ADDR", "")


def lockout_response(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """429 with Retry-After and a page saying how long to wait. The cool-off runs from the latest attempt
    (a login tried while locked out starts it again), so the whole cool-off is the wait from now."""
    seconds = int(settings.AXES_COOLOFF_TIME.total_seconds())
    username = (credentials or {}).get("username") or request.POST.get("username", "")
    context = {
        "username": username,
        "minutes": math.ceil(seconds / 60),
        "failure_limit": settings.AXES_FAILURE_LIMIT,
    }
    response = render(request, "registration/locked_out.html", context, status=429)
    response["Retry-After"] = str(seconds)
    return response
