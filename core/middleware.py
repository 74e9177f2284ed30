"""Request checks that hold for every page and endpoint."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.db import DataError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render, resolve_url

from core.parsing import InvalidParameter, has_nul
from core.views import bad_request, healthz

FORM = "application/x-www-form-urlencoded"
NUL_REFUSED = "The request holds a NUL character (%00), which no parameter takes."


class HealthCheck:
    """`/healthz` answered before any other middleware. Load balancers and container health checks (compose's
    `web`) ask by the server's own address over plain HTTP: past SecurityMiddleware that is a 400 (a host not
    in ALLOWED_HOSTS) or a 301 to HTTPS, and the check never passes. It reads no host, database or template."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info == "/healthz" and request.method in ("GET", "HEAD"):
            return healthz(request)
        return self.get_response(request)


class RefuseNulCharacters:
    """PostgreSQL text cannot hold a NUL character: a query that compares with one fails in the database, a
    server error. No page or endpoint takes one, so a request with NUL in its path, query string or form
    body is a 400 saying so. Multipart bodies are not read here (that would come before the upload view
    installs its size limit), and JSON bodies are checked by the API's parser (core/parsing.py); a NUL that
    still reaches a query from either is turned into the same 400 when psycopg refuses it."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        in_form = request.method == "POST" and request.content_type == FORM and has_nul(request.POST)
        if "\x00" in request.path or has_nul(request.GET) or in_form:
            raise InvalidParameter(NUL_REFUSED)
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        # psycopg refuses a NUL before sending the query, so the connection and transaction are unharmed.
        if isinstance(exception, DataError) and "NUL" in str(exception):
            return bad_request(request, InvalidParameter(NUL_REFUSED))
        return None


class HtmxSessionEnded:
    """An htmx request that login_required sends to the login page (the session ended, or the user logged out
    in another tab) is answered 401 with a page saying so, not the redirect: htmx would follow it and swap the
    whole login page into the preview panel or the review item, whose autofocus then took the keystrokes and
    whose swap lost the text being typed. A 401 is not swapped (static/js/app.js shows its reason instead)."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code != 302 or request.headers.get("HX-Request") != "true":
            return response
        if urlsplit(response.get("Location", "")).path != resolve_url(settings.LOGIN_URL):
            return response
        return render(request, "core/session_ended.html", status=401)


class ActionPage:
    """A page's action (a POST-only address: score, cancel, approve) opened in the address bar answered 405 with
    an empty body, which a browser shows as its own blank error page. It gets the site's page saying what the
    address is; the status and its Allow header stay. The API keeps DRF's JSON answer."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code != 405 or response.content or request.path_info.startswith("/api/"):
            return response
        page = render(request, "core/method_not_allowed.html", status=405)
        page["Allow"] = response.get("Allow", "")
        return page
