"""Error pages: an unknown slug or id is a 404 on every page, export and API URL that takes one (the API
answers in JSON), and the 404 and 500 pages are the site's layout, rendered without the database."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.test import Client
from django.urls import URLResolver, get_resolver, path, reverse

from collection.models import Benchmark, Task
from core import urls as site_urls
from core.middleware import FORM

pytestmark = pytest.mark.django_db

NO_ID = 987654321

# (url name, arguments, method, query or body). Each names something that does not exist: a slug or id
# nobody has, or a task slug under a benchmark that does exist (slug "b", which has task "t").
PAGES = [
    ("benchmark_detail", ["nosuch"], "get", {}),
    ("task_detail", ["nosuch", "t"], "get", {}),
    ("task_detail", ["b", "nosuch"], "get", {}),
    ("task_instance", ["nosuch", "t", NO_ID], "get", {}),
    ("task_instance", ["b", "nosuch", NO_ID], "get", {}),
    ("task_instance", ["b", "t", NO_ID], "get", {}),
    ("phrasing_new", ["nosuch", "t"], "get", {}),
    ("phrasing_new", ["b", "nosuch"], "post", {"template": "Is {number} even?"}),
    ("phrasing_preview", ["b", "nosuch"], "post", {"template": "Is {number} even?"}),
    ("leaderboard", ["nosuch"], "get", {}),
    ("leaderboard", ["nosuch"], "get", {"format": "csv"}),
    ("leaderboard", ["nosuch"], "get", {"format": "json"}),
    ("compare", ["nosuch"], "get", {}),
    ("compare", ["nosuch"], "get", {"a": "1", "b": "2"}),
    ("task_results", ["nosuch", "t"], "get", {}),
    ("task_results", ["b", "nosuch"], "get", {}),
    ("task_results", ["b", "nosuch"], "get", {"format": "csv"}),
    ("task_sample", ["b", "nosuch"], "post", {"size": "all"}),
    ("phrasing_detail", [NO_ID], "get", {}),
    ("phrasing_edit", [NO_ID], "get", {}),
    ("phrasing_edit", [NO_ID], "post", {"template": "Is {number} odd?"}),
    ("curation_review", [NO_ID], "post", {"decision": "approved", "revision": "1"}),
    ("model_detail", ["nosuch"], "get", {}),
    ("model_score", ["nosuch"], "post", {}),
    ("model_check_retry", ["nosuch"], "post", {}),
    ("model_align", ["nosuch"], "post", {}),
    ("model_calibrate", ["nosuch"], "post", {}),
    ("softprompt_detail", [NO_ID], "get", {}),
    ("softprompt_cancel", [NO_ID], "post", {}),
    ("softprompt_retry", [NO_ID], "post", {}),
    ("run_detail", [NO_ID], "get", {}),
    ("run_cancel", [NO_ID], "post", {}),
    ("run_retry", [NO_ID], "post", {}),
    ("plan_detail", [NO_ID], "get", {}),
    ("plan_start", [NO_ID], "post", {}),
    ("plan_discard", [NO_ID], "post", {}),
    ("snapshot_new", ["nosuch"], "get", {}),
    ("snapshot_new", ["nosuch"], "post", {"set": "all"}),
    ("benchmark_snapshots", ["nosuch"], "get", {}),
    ("snapshot_detail", ["0000000000"], "get", {}),
    ("release_detail", [NO_ID], "get", {}),
    ("release_detail", [NO_ID], "post", {"confirm": "yes"}),
    ("snapshot_diff_pick", ["0000000000"], "get", {"to": "0000000001"}),
    ("snapshot_diff", ["0000000000", "0000000001"], "get", {}),
]
API = [
    ("benchmark-detail", ["nosuch"], "get", {}),
    ("task-detail", [NO_ID], "get", {}),
    ("task-detail", ["nosuch"], "get", {}),
    ("instruction-detail", [NO_ID], "get", {}),
    ("instruction-detail", [NO_ID], "patch", {"template": "Is {number} odd?"}),
    ("instruction-review", [NO_ID], "post", {"decision": "approved", "revision": 1}),
    ("instruction-tags", [NO_ID], "post", {"tags": ["terse"]}),
    ("languagemodel-detail", ["nosuch"], "get", {}),
    ("languagemodel-retry-check", ["nosuch"], "post", {}),
    ("scoringrun-detail", [NO_ID], "get", {}),
    ("scoringrun-cancel", [NO_ID], "post", {}),
    ("scoringrun-retry", [NO_ID], "post", {}),
    ("phrasingresult-detail", [NO_ID], "get", {}),
    ("scoringplan-detail", [NO_ID], "get", {}),
    ("scoringplan-start", [NO_ID], "post", {}),
    ("scoringplan-discard", [NO_ID], "post", {}),
    ("api_leaderboard", None, "get", {"benchmark": "nosuch"}),
    ("api_compare", None, "get", {"benchmark": "nosuch", "a": "1", "b": "2"}),
    ("snapshot-detail", ["0000000000"], "get", {}),
    ("releaseexport-detail", [NO_ID], "get", {}),
    ("releaseexport-detail", [NO_ID], "delete", {}),
    ("releaseexport-file", [NO_ID, "release.json"], "get", {}),
    ("releaseexport-file-slash", [NO_ID, "release.json"], "get", {}),
    ("snapshot-leaderboard", ["0000000000"], "get", {}),
    ("snapshot-diff", ["0000000000", "0000000001"], "get", {}),
]
# URLs with a path argument that names no row of ours, so cannot be unknown in the sense above.
NOT_LOOKUPS = {
    "password_reset_confirm",  # a bad token is Django's "invalid link" page (200)
    "api-root",  # its argument is a format suffix
}


@pytest.fixture
def site(db, admin_user) -> Client:
    """The benchmark "b" with its task "t", and a client signed in as an admin, so that no permission check
    answers first: a 404 here says the thing does not exist."""
    benchmark = Benchmark.objects.create(slug="b", name="Bench")
    Task.objects.create(
        benchmark=benchmark,
        slug="t",
        name="Parity",
        kind="binary",
        answer_format="option_text",
        input_fields=["number"],
        label_space=["yes", "no"],
        max_options=2,
    )
    client = Client()
    client.force_login(admin_user)
    return client


def _page(client: Client, name: str, args, method: str, data: dict):
    url = reverse(name, args=args)
    if name in {case[0] for case in API}:
        if method == "get":
            return client.get(url, data)
        return getattr(client, method)(url, data, content_type="application/json")
    return getattr(client, method)(url, data)


def _in_layout(html: str) -> bool:
    return "<h1>Not found</h1>" in html and 'class="brand"' in html and f'href="{reverse("home")}"' in html


@pytest.mark.parametrize("cached", [False, True], ids=["uncached", "page-cache"])
@pytest.mark.parametrize(
    "name,args,method,data", PAGES, ids=[f"{c[2]}-{c[0]}-{i}" for i, c in enumerate(PAGES)]
)
def test_an_unknown_slug_or_id_is_a_404_in_the_sites_layout(site, cached, name, args, method, data):
    if cached:  # a browser's CSRF cookie: the page cache (core/page_cache.py) takes the request first
        site.cookies[settings.CSRF_COOKIE_NAME] = "x" * 32
    response = _page(site, name, args, method, data)
    assert response.status_code == 404, f"{method.upper()} {name} {args}: {response.status_code}"
    assert _in_layout(response.content.decode())


@pytest.mark.parametrize("name,args,method,data", API, ids=[f"{c[2]}-{c[0]}-{i}" for i, c in enumerate(API)])
def test_an_unknown_slug_or_id_in_the_api_is_a_404_in_json(site, name, args, method, data):
    response = _page(site, name, args, method, data)
    assert response.status_code == 404, f"{method.upper()} {name} {args}: {response.status_code}"
    assert response["Content-Type"].startswith("application/json") and "detail" in response.json()


def test_an_api_path_no_route_matches_is_a_404_in_json(client):
    response = client.get("/api/nosuch/")
    assert response.status_code == 404 and response.json() == {"detail": "Not found."}


def _lookups(patterns, namespace: str = "") -> set[str]:
    names = set()
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            if pattern.namespace == "admin":
                continue  # Django's own admin answers its own 404s
            names |= _lookups(pattern.url_patterns, pattern.namespace or namespace)
        elif pattern.name and re.search(r"<\w+:|\(\?P<(?!format>)", str(pattern.pattern)):
            names.add(pattern.name)
    return names


def test_every_url_that_takes_a_slug_or_id_is_covered_above():
    covered = {case[0] for case in PAGES + API} | NOT_LOOKUPS
    missing = _lookups(get_resolver().url_patterns) - covered
    assert not missing, f"add unknown-slug cases for: {sorted(missing)}"


def test_the_404_page_asks_the_database_nothing_even_for_a_signed_in_user(site, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = site.get("/no/such/page/")
    html = response.content.decode()
    assert response.status_code == 404 and _in_layout(html)
    # The address is not echoed: a 404 also stands in for a phrasing the viewer may not see.
    assert "/no/such/page/" not in html
    # No user is shown (the page has none), and no inline script or style for the Content-Security-Policy.
    assert "Log in" not in html and "Log out" not in html
    assert "Content-Security-Policy" in response
    assert not re.search(r"<script(?![^>]*\ssrc=)[^>]*>|<style\b|\sstyle=", html)


def _broken(request):
    raise RuntimeError("boom")


# This module doubles as a URLconf for the 500 test: the site's own URLs and error handlers, plus one view
# that fails before it asks the database anything.
urlpatterns = [path("broken/", _broken), path("api/broken/", _broken), *site_urls.urlpatterns]
handler404 = site_urls.handler404
handler500 = site_urls.handler500


@pytest.mark.urls(__name__)
def test_the_500_page_is_the_sites_layout_and_needs_no_database(site, django_assert_num_queries):
    site.raise_request_exception = False
    with django_assert_num_queries(0):
        response = site.get("/broken/")
    html = response.content.decode()
    assert response.status_code == 500
    assert "<h1>Server error</h1>" in html and 'class="brand"' in html and f'href="{reverse("home")}"' in html
    assert f'href="{reverse("model_list")}"' in html and "boom" not in html
    assert "Content-Security-Policy" in response
    assert not re.search(r"<script(?![^>]*\ssrc=)[^>]*>|<style\b|\sstyle=", html)


@pytest.mark.urls(__name__)
def test_a_500_under_the_api_is_json(client):
    client.raise_request_exception = False
    response = client.get("/api/broken/")
    assert response.status_code == 500 and response.json() == {"detail": "Server error."}


def test_the_500_page_renders_with_no_context_at_all():
    from django.template import loader

    html = loader.render_to_string("500.html")
    assert html.lstrip().lower().startswith("<!doctype html>") and "<h1>Server error</h1>" in html


def test_a_refusal_is_a_403_in_the_sites_layout_with_its_reason(client, django_user_model):
    author = django_user_model.objects.create_user("ann", password="pw-for-ann-12345")
    client.force_login(author)
    response = client.get(reverse("curation_queue"))
    html = response.content.decode()
    assert response.status_code == 403 and "<h1>Not allowed</h1>" in html and 'class="brand"' in html
    assert "Only curators review phrasings." in html and "Signed in as ann" in html


def test_an_htmx_request_whose_session_ended_is_a_401_saying_so_not_the_login_page(client):
    """htmx followed the login redirect and swapped the whole login page into the panel, losing the text."""
    url = reverse("phrasing_preview", args=["b", "t"])
    plain = client.post(url, {"template": "Is {number} even?"})
    assert plain.status_code == 302 and plain["Location"].startswith(reverse("login"))
    response = client.post(url, {"template": "Is {number} even?"}, headers={"HX-Request": "true"})
    html = response.content.decode()
    assert response.status_code == 401 and html.lstrip().lower().startswith("<!doctype html>")
    assert "data-message>Your session has ended" in html and 'name="password"' not in html


def test_a_refused_parameter_is_logged_in_one_line_not_a_traceback(client, caplog):
    """A fuzzer's odd query strings wrote a traceback each to the server log."""
    with caplog.at_level("WARNING", logger="django.request"):
        response = client.get("/", {"page": "\x00"})
    assert response.status_code == 400
    (record,) = [r for r in caplog.records if r.name == "django.request"]
    assert "NUL character" in record.getMessage() and record.exc_info is None


def test_a_host_not_allowed_is_logged_in_one_line_not_a_traceback(client, caplog):
    """Scanners ask every public server by other host names: each wrote a traceback (seen by bin/image-check)."""
    with caplog.at_level("WARNING", logger="django.security.DisallowedHost"):
        response = client.get("/", HTTP_HOST="evil.example")
    assert response.status_code == 400
    (record,) = [r for r in caplog.records if r.name == "django.security.DisallowedHost"]
    assert "evil.example" in record.getMessage() and record.exc_info is None
    assert record.levelname == "WARNING"  # the client's mistake, as any other 400


def test_a_page_refused_for_want_of_a_permission_is_logged_in_one_line_not_a_traceback(client, carol, caplog):
    """As demo-curator, an admin page only admins may use (a user's change form) logged a traceback."""
    from core import services

    services.user_role_set(user=carol, role="curator")  # staff, as set_role and load_demo make a curator
    client.force_login(carol)
    with caplog.at_level("WARNING", logger="django.request"):
        response = client.get(reverse("admin:auth_user_change", args=[carol.id]))
    assert response.status_code == 403
    (record,) = [r for r in caplog.records if r.name == "django.request"]
    assert "Forbidden" in record.getMessage() and record.exc_info is None


def test_an_action_address_opened_in_the_browser_says_what_it_is(client, admin_user):
    """A POST-only address answered 405 with an empty body: the browser showed its own blank error page."""
    client.force_login(admin_user)
    response = client.get(reverse("task_sample", args=["b", "t"]))
    html = response.content.decode()
    assert response.status_code == 405 and response["Allow"] == "POST"
    assert "<h1>Not a page</h1>" in html and "done with its button" in html and 'class="brand"' in html


def test_an_outdated_csrf_token_is_refused_saying_what_to_do_and_gives_the_text_back(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.post(reverse("phrasing_new", args=["b", "t"]), {"template": "Is {number} even?"})
    html = response.content.decode()
    assert response.status_code == 403 and "<h1>Not allowed</h1>" in html
    assert "outdated security token" in html and "Is {number} even?</textarea>" in html


def test_a_phrasing_refused_for_a_nul_character_is_given_back_without_it(client, alice):
    """A NUL in a posted phrasing is a 400 before any view (core.middleware.RefuseNulCharacters); the page
    replaced the form and the text was lost but for the browser's Back."""
    client.force_login(alice)
    body = urlencode({"template": "Is {number}\x00 even?"})  # as a browser sends a form
    response = client.post(reverse("phrasing_new", args=["b", "t"]), body, content_type=FORM)
    html = response.content.decode()
    assert response.status_code == 400 and "NUL character" in html
    assert "Is {number} even?</textarea>" in html
