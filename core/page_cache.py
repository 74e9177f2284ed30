"""Whole-response cache for read-only pages whose content changes only with their data version (the
leaderboard, a task's results, the leaderboard API): a repeat view costs one version query and a cache read
instead of the session, user, role and summary queries and the template render.

Django's own cache keys are used (django.utils.cache.get_cache_key / learn_cache_key): the key covers the
full URL, the method and the request headers the response varies on, under a prefix made of the data version,
so a refresh of the figures makes new keys and old pages simply expire. A page varies on Cookie (it shows
who is signed in and carries their CSRF token) and on HX-Request (an htmx request gets a fragment); an API
answer, the same for every caller, varies on Accept only.

What is never cached, because the page would then not be what this viewer should see:
- a request without the CSRF cookie: its render sets a fresh CSRF secret, which must not be shared;
- a request carrying flash messages (the `messages` cookie): they are shown once, by a real render;
- a response that is not 200 or that sets a cookie.
A change of the viewer's role shows in the navigation of a cached page once the version changes or
PAGE_CACHE_SECONDS pass; permissions themselves are checked by every write, never by what a page showed.

A page is served only to the session it was rendered for: the key also holds who the request authenticates
as now (the user's id, or anonymous). A Cookie header replayed after its session logged out or expired, or
after the password changed, authenticates as nobody, so it misses the page rendered for the user and gets
what an anonymous visitor gets. Authenticating costs a signed-in viewer the session and user queries on a
hit; an anonymous one without a session cookie, none.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.utils.cache import get_cache_key, learn_cache_key, patch_vary_headers

PAGE_CACHE_SECONDS = 300


def cached_page(version_of: Callable[..., object]):
    """Cache a page's whole response per viewer (the Cookie header) and per `version_of(request, *args,
    **kwargs)`: a value that changes whenever the data the page shows changes (None: do not cache). The key
    covers the full URL too, so the version need not name the page."""
    return _cached(version_of, vary=("Cookie", "HX-Request"), per_viewer=True)


def cached_api(version_of: Callable[..., object]):
    """The same for a JSON API view whose answer is the same for every caller, under DRF's @api_view (so
    authentication and permissions run first; a bad token still gets its 401). It varies on Accept: JSON is
    cached, the browsable API (a page with the caller's name and CSRF token) never."""
    return _cached(version_of, vary=("Accept",), per_viewer=False)


def _cached(version_of, *, vary: tuple[str, ...], per_viewer: bool):
    def decorator(view):
        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not _cacheable_request(request, per_viewer):
                return view(request, *args, **kwargs)
            version = version_of(request, *args, **kwargs)
            if version is None:
                return view(request, *args, **kwargs)
            # The view builds with the version its key is made of (page_version), without asking again.
            request.page_version = version
            viewer = _viewer(request) if per_viewer else None
            prefix = "page:" + hashlib.sha256(repr((version, viewer)).encode()).hexdigest()[:32]
            key = get_cache_key(request, prefix, "GET", cache=cache)
            hit = cache.get(key) if key else None
            if hit is not None:
                return hit
            response = view(request, *args, **kwargs)
            patch_vary_headers(response, vary)
            if response.status_code != 200 or response.cookies or response.streaming:
                return response
            key = learn_cache_key(request, response, PAGE_CACHE_SECONDS, prefix, cache=cache)

            def store(rendered: HttpResponse) -> None:
                renderer = getattr(rendered, "accepted_renderer", None)
                if renderer is None or renderer.format == "json":
                    cache.set(key, rendered, PAGE_CACHE_SECONDS)

            if getattr(response, "is_rendered", True):
                store(response)
            else:  # a DRF or template response renders after the view: store it then
                response.add_post_render_callback(store)
            return response

        wrapped.page_cache_per_viewer = per_viewer  # found by tests that walk the URL patterns
        return wrapped

    return decorator


def page_version(request: HttpRequest, compute: Callable[[], object]) -> object:
    """The data version the cache decorator computed for this request, or `compute()` where it did not (a
    request it does not cache)."""
    version = getattr(request, "page_version", None)
    return compute() if version is None else version


def _viewer(request: HttpRequest) -> int | None:
    """Who the request authenticates as now (None: nobody), checked against the session store and the
    user's password hash, never read from the Cookie header alone."""
    user = request.user
    return user.pk if user.is_authenticated else None


def _cacheable_request(request: HttpRequest, per_viewer: bool) -> bool:
    if request.method not in ("GET", "HEAD"):
        return False
    if not per_viewer:
        return True
    return settings.CSRF_COOKIE_NAME in request.COOKIES and "messages" not in request.COOKIES
