"""The running product, crawled as its users meet it: every same-site link from the home page, followed as
anonymous, author, curator and admin, and every GET operation of the OpenAPI schema, with real ids and with
ids that do not exist. Nothing may answer 5xx.

The world holds every kind of row a page may have to draw: the demo benchmark scored by a tiny model, a model
estimated from a sample (an adaptive run), a partial row (published results on one phrasing per task), the
study's published results on tasks with no local instances, an author's pending, rejected and approved
phrasings, a failed soft prompt and a scoring plan. CI runs this file on PostgreSQL and on SQLite, the
embedded default (bin/test), because a query that works on one may not parse on the other.
"""

from __future__ import annotations

import re
from collections import deque
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from collection import services as collection_services
from collection.demo import load_demo
from collection.models import Collection, Instruction, Task
from core.jobs import JobStatus
from evaluation.leaderboards import aggregates
from evaluation.leaderboards.published_results import COLUMNS, import_results
from evaluation.models import (
    ModelVariant,
    PhrasingResult,
    ResultSource,
    ScoringPlan,
    SoftPrompt,
    TaskSummary,
    VariantKind,
)
from evaluation.runs import registry, scoring

pytestmark = pytest.mark.django_db

ROLES = {"anonymous": None, "author": "author", "curator": "curator", "admin": "admin"}
LINK = re.compile(r'(?:href|hx-get|action)="([^"#]*)"')
# Pages that end the session or are not ours to crawl; everything else same-site is followed.
SKIP = ("/static/", "/accounts/logout/", "/admin/logout/", "/admin/r/", "/healthz")
PAGES_PER_ROLE = 700
QUERIES_PER_PATH = 4  # admin's filters alone would make thousands of query strings; a few per path suffice
MISSING_ID = "987654321"


@pytest.fixture
def world(tiny_models, tmp_path, django_user_model, django_capture_on_commit_callbacks, settings):
    settings.ADAPTIVE_TARGET_WIDTH = 0  # the adaptive run spends its whole budget
    load_demo(generated_per_task=0)
    Task.objects.filter(benchmark__slug="demo").update(eval_sample_size=4)
    users = {}
    for role, group in ROLES.items():
        if group is None:
            continue
        user = django_user_model.objects.create_user(username=f"crawl-{role}", password="x")
        user.groups.add(Group.objects.get(name=group))
        user.is_staff = role in ("curator", "admin")
        user.save()
        users[role] = user
    demotune = Collection.objects.get(slug="demotune")
    with django_capture_on_commit_callbacks(execute=True):
        registry.language_model_register(
            name="tiny-t5", source=str(tiny_models["t5"]), family="seq2seq", tuned_on=[demotune]
        )
    # An estimated row: a second model sampled on one task by an adaptive run, never scored exhaustively.
    gpt2 = registry.language_model_register(
        name="tiny-gpt2", source=str(tiny_models["gpt2"]), family="causal", score=False, check_now=True
    )
    parity = Task.objects.get(benchmark__slug="demo", slug="parity")
    variant = scoring.base_variant(gpt2)
    run = scoring.scoring_adaptive(variant=variant, task=parity, budget_cells=10)
    assert scoring.scoring_run_execute(run_id=run.id, task_id="crawl").status == JobStatus.SUCCEEDED
    aggregates.aggregates_refresh(variant_id=variant.id, task_id=parity.id)
    # A partial row: published accuracies for one phrasing per demo task.
    single = registry.LanguageModel.objects.create(
        name="single", source="published results", family="seq2seq", is_active=False
    )
    imported = single.variants.create(kind=VariantKind.IMPORTED)
    touched = set()
    for task in Task.objects.filter(benchmark__slug="demo"):
        first = task.instructions.filter(status="approved").order_by("id").first()
        PhrasingResult.objects.create(
            variant=imported,
            revision=first.current_revision,
            task=task,
            accuracy=0.9,
            source=ResultSource.IMPORTED,
        )
        touched.add((imported.id, task.id))
    aggregates.aggregates_refresh_many(touched)
    # The study's published results, on tasks this database holds no instances of.
    csv_file = tmp_path / "published.csv"
    lines = [",".join(COLUMNS)]
    for model, base in (("Flan-T5-XL", 0.6), ("T0++", 0.5)):
        for dataset in ("Hindu_Knowledge", "Known_Unknowns"):
            for n, kind in enumerate(["Unobserved", "Unobserved", "Observed"]):
                collection = "Crowd" if kind == "Unobserved" else "FLAN"
                lines.append(f"{model},{dataset},{collection},{kind},{n},0,{base + n / 20},acc,TRUE")
    csv_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    import_results(Path(csv_file))
    # An author's phrasings in every state a page lists.
    crowd = Collection.objects.get(slug="crowd")
    written = [
        collection_services.instruction_create(
            task=parity,
            template=f"Crawl phrasing {n}: is {{number}} even?",
            collection=crowd,
            author=users["author"],
        )
        for n in range(3)
    ]
    for instruction, decision in zip(written[1:], ["rejected", "needs_edit"], strict=True):
        collection_services.instruction_review(
            instruction=instruction, reviewer=users["curator"], status=decision, reason="Too vague."
        )
    SoftPrompt.objects.create(model=gpt2, trigger="manual", config={}, status="failed", error="boom")
    ScoringPlan.objects.create(trigger="import", budget_cells=1)
    return users


def _client(world, role: str) -> Client:
    client = Client(raise_request_exception=False)
    if role != "anonymous":
        client.force_login(world[role])
    return client


def _links(base: str, body: str) -> list[str]:
    found = []
    for raw in LINK.findall(body):
        url = urljoin(base, raw.replace("&amp;", "&"))
        parts = urlsplit(url)
        if parts.netloc not in ("", "testserver") or not parts.path.startswith("/"):
            continue
        if parts.path.startswith(SKIP):
            continue
        found.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    return found


def _crawl(client: Client, forms: list[str]) -> tuple[set[str], list[str]]:
    """Breadth first from the home page and the results of `forms` (GET forms a user would submit): the URLs
    reached and those that answered 5xx."""
    queue, seen, per_path, failures = deque(["/", *forms]), {"/", *forms}, {}, []
    while queue and len(seen) <= PAGES_PER_ROLE:
        url = queue.popleft()
        response = client.get(url)
        if response.status_code >= 500:
            failures.append(f"{response.status_code} {url}")
            continue
        location = response.get("Location") if response.status_code in (301, 302, 303, 307, 308) else None
        if location:
            targets = _links(url, f'href="{location}"')
        elif "text/html" in response.get("Content-Type", "") and not response.streaming:
            targets = _links(url, response.content.decode(errors="replace"))
        else:
            targets = []
        for target in targets:
            path, _, query = target.partition("?")
            if target in seen or (query and per_path.get(path, 0) >= QUERIES_PER_PATH):
                continue
            if query:
                per_path[path] = per_path.get(path, 0) + 1
            seen.add(target)
            queue.append(target)
    return seen, failures


def _operations(client: Client) -> list[str]:
    schema = client.get("/api/schema/", {"format": "json"}).json()
    return [path for path, item in schema["paths"].items() if "get" in item]


def _first_id(client: Client, list_path: str) -> str | None:
    body = client.get(list_path).json()
    rows = body.get("results", body) if isinstance(body, dict) else body
    if isinstance(rows, list) and rows and isinstance(rows[0], dict):
        return next((str(rows[0][key]) for key in ("id", "slug", "name") if key in rows[0]), None)
    return None


def _api(client: Client, query: dict) -> tuple[int, list[str]]:
    """Every GET operation of the schema, with a real id and a missing one, bare and with `query`: how many
    requests, and which failed."""
    failures, tried = [], 0
    for path in _operations(client):
        params = re.findall(r"{(\w+)}", path)
        candidates = [path]
        if params:
            known = _first_id(client, path.split("{")[0])
            candidates = [re.sub(r"{\w+}", value, path) for value in filter(None, [known, MISSING_ID])]
        for url in candidates:
            for extra in ({}, query):
                tried += 1
                response = client.get(url, extra, HTTP_ACCEPT="application/json")
                if response.status_code >= 500:
                    failures.append(f"{response.status_code} {url} {extra}")
                elif url.endswith(MISSING_ID + "/") and response.status_code != 404:
                    failures.append(f"{response.status_code} (not 404) {url}")
    return tried, failures


def test_no_page_or_api_operation_answers_a_server_error_for_any_role(world):
    """One world, crawled by each role in turn (building it costs more than the crawl)."""
    parity = Task.objects.get(benchmark__slug="demo", slug="parity")
    # The crawl is only as good as what there is to draw.
    assert TaskSummary.objects.filter(figures__estimated=True).exists()
    assert Task.objects.filter(benchmark__slug="bigbench-lite", instances__isnull=True).exists()
    assert Instruction.objects.filter(author=world["author"], status="pending").exists()
    assert PhrasingResult.objects.filter(variant__model__name="tiny-t5").count() >= 12
    assert len(_operations(Client())) >= 10
    # The compare form's answers, for every pair of the demo's rows (ranked, estimated, partial).
    variants = list(ModelVariant.objects.order_by("id").values_list("id", flat=True))
    pairs = [(a, b) for a in variants for b in variants if a < b]
    forms = [f"/b/{slug}/compare/?a={a}&b={b}" for slug in ("demo", "bigbench-lite") for a, b in pairs]
    query = {"benchmark": "demo", "task": str(parity.id), "a": str(variants[0]), "b": str(variants[-1])}
    report = []
    for role in ROLES:
        client = _client(world, role)
        seen, page_failures = _crawl(client, forms)
        tried, api_failures = _api(client, query)
        if page_failures or api_failures:
            report.append(
                f"{role}: {len(page_failures)} of {len(seen)} pages, {len(api_failures)} of {tried} "
                f"API requests: {(page_failures + api_failures)[:15]}"
            )
        # The crawl reached the pages that matter, not just the home page.
        expected = [
            "/b/demo/leaderboard/",
            "/b/demo/t/parity/results/",
            "/models/",
            "/b/bigbench-lite/leaderboard/",
        ]
        if role != "anonymous":
            expected.append("/me/phrasings/" if role == "author" else "/runs/")
        missing = [page for page in expected if page not in seen]
        assert not missing, f"{role} never reached {missing} ({len(seen)} pages)"
    assert not report, "\n".join(report)
