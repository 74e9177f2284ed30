"""Whole-response caching of read-only pages: a repeat view is served from the cache with one version query,
a change of the figures shows at once, and nothing viewer-specific is ever shared."""

from __future__ import annotations

import json

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from collection.demo import load_demo
from collection.models import Instruction, Task
from evaluation.models import ModelVariant
from tests.evaluation.published import imported_variant

pytestmark = pytest.mark.django_db


def _imported(name: str, accuracy: float) -> ModelVariant:
    """A published row with the same accuracy on every approved demo phrasing."""
    approved = Instruction.objects.filter(task__benchmark__slug="demo", status="approved")
    return imported_variant(
        name, dict.fromkeys(approved.select_related("current_revision", "task"), accuracy)
    )


@pytest.fixture
def published(db):
    load_demo(generated_per_task=0)
    return _imported("published-a", 0.625)


def _viewer(user=None) -> Client:
    """A browser that already holds its CSRF cookie (as after any first page)."""
    client = Client()
    if user is not None:
        client.force_login(user)
    client.cookies[settings.CSRF_COOKIE_NAME] = "x" * 32
    return client


def test_a_repeat_view_is_served_from_the_cache_and_a_refresh_shows_at_once(
    published, django_assert_num_queries
):
    client, url = _viewer(), reverse("leaderboard", args=["demo"])
    first = client.get(url)
    assert first.status_code == 200 and "62.5" in first.content.decode()
    # The data version (the benchmark's summaries and its estimated task summaries); no session, user,
    # summary or template work.
    with django_assert_num_queries(2):
        again = client.get(url)
    assert again.content == first.content and "Cookie" in again["Vary"]
    _imported("published-b", 0.875)  # new figures: a new data version
    assert "87.5" in client.get(url).content.decode()


@pytest.mark.parametrize(
    ("page", "args", "selector"),
    [("leaderboard", ["demo"], "leaderboard_version"), ("task_results", ["demo", "parity"], "task_version")],
)
def test_a_miss_asks_for_the_data_version_once(published, monkeypatch, page, args, selector):
    from evaluation.leaderboards import selectors

    calls = []
    real = getattr(selectors, selector)
    monkeypatch.setattr(selectors, selector, lambda *a, **k: calls.append(a) or real(*a, **k))
    client = _viewer()
    assert client.get(reverse(page, args=args)).status_code == 200
    # The page is built with the version its cache key holds, not a second (maybe newer) one.
    assert len(calls) == 1
    assert client.get(reverse(page, args=args)).status_code == 200  # a hit: asked once more
    assert len(calls) == 2


def _queries(client: Client, url: str) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_viewers_never_share_a_page_and_first_visits_and_messages_are_not_cached(published, alice, bob):
    url = reverse("leaderboard", args=["demo"])
    assert "alice" in _viewer(alice).get(url).content.decode()
    page = _viewer(bob).get(url).content.decode()
    assert "bob" in page and "alice" not in page
    # No CSRF cookie: the render sets a fresh secret, so the page is not stored (its token is not shared).
    for _ in range(2):
        fresh = Client()
        assert _queries(fresh, url) > 1 and settings.CSRF_COOKIE_NAME in fresh.cookies
    # A pending flash message is shown by a real render, every time it is pending.
    with_message = _viewer()
    with_message.cookies["messages"] = "pending"
    assert _queries(with_message, url) > 1 and _queries(with_message, url) > 1


def test_the_task_page_and_the_api_follow_their_data_version(published, django_assert_num_queries):
    client = _viewer()
    task = Task.objects.get(benchmark__slug="demo", slug="parity")
    task_url = reverse("task_results", args=["demo", task.slug])
    assert client.get(task_url).status_code == 200
    with django_assert_num_queries(2):  # the task's results and summaries versions
        assert client.get(task_url).status_code == 200
    api = Client()  # API callers hold no cookies; the answer is the same for everyone
    rows = json.loads(api.get("/api/leaderboard/", {"benchmark": "demo"}).content)["results"]
    with django_assert_num_queries(2):  # the data version
        assert json.loads(api.get("/api/leaderboard/", {"benchmark": "demo"}).content)["results"] == rows
    _imported("published-b", 0.875)
    assert len(json.loads(api.get("/api/leaderboard/", {"benchmark": "demo"}).content)["results"]) == 2
    assert api.get("/api/leaderboard/").status_code == 400  # no benchmark: never cached, still a clear error


# --- A page only for the session it was rendered for (issue 27) ---------------------------------------------

# Arguments for every page under @cached_page; the test below finds them by walking the URL patterns, so a new
# cached page fails it until it is listed here.
CACHED_PAGES = {"leaderboard": ["demo"], "task_results": ["demo", "parity"]}


def _cached_pages() -> set[str]:
    from django.urls import URLPattern, URLResolver, get_resolver

    found, stack = set(), list(get_resolver().url_patterns)
    while stack:
        entry = stack.pop()
        if isinstance(entry, URLResolver):
            stack.extend(entry.url_patterns)
        elif isinstance(entry, URLPattern) and getattr(entry.callback, "page_cache_per_viewer", False):
            found.add(entry.name)
    return found


def _end_by_logout(client: Client, session_key: str) -> None:
    client.post(reverse("logout"))


def _end_by_expiry(client: Client, session_key: str) -> None:
    from datetime import timedelta

    from django.contrib.sessions.models import Session
    from django.utils import timezone

    Session.objects.filter(session_key=session_key).update(expire_date=timezone.now() - timedelta(seconds=1))


def _end_by_password_change(client: Client, session_key: str) -> None:
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.get(username="carol")
    user.set_password("a new password, elsewhere")
    user.save()


@pytest.mark.parametrize("end", [_end_by_logout, _end_by_expiry, _end_by_password_change])
def test_a_session_that_ended_gets_no_page_rendered_for_its_user_from_the_cache(published, carol, end):
    assert _cached_pages() == set(CACHED_PAGES), "list the arguments of every cached page in CACHED_PAGES"
    browser = Client()
    browser.force_login(carol)
    browser.cookies[settings.CSRF_COOKIE_NAME] = "x" * 32
    pages = [
        (reverse(name, args=args), htmx) for name, args in CACHED_PAGES.items() for htmx in (False, True)
    ]
    headers = {True: {"HTTP_HX_REQUEST": "true"}, False: {}}
    for url, htmx in pages:
        for _ in range(2):  # rendered, then served from the cache
            response = browser.get(url, **headers[htmx])
            assert response.status_code == 200
        if not htmx:
            assert "carol" in response.content.decode()
    replayed = {name: morsel.value for name, morsel in browser.cookies.items()}
    end(browser, replayed[settings.SESSION_COOKIE_NAME])
    # An eavesdropper (or a shared computer's back button) sends the old Cookie header again.
    for url, htmx in pages:
        replay = Client()
        for name, value in replayed.items():
            replay.cookies[name] = value
        response = replay.get(url, **headers[htmx])
        assert response.status_code == 200
        assert "carol" not in response.content.decode(), url
        if not htmx:
            assert "Log in" in response.content.decode()
