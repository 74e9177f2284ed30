"""Who may do what: every page and API endpoint, for anonymous users, the author of a phrasing, another
author, a curator and an admin. A test below fails when a URL is added without a row here."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from collection import services
from collection.models import Benchmark, Collection, Instance, Instruction, Task
from evaluation.models import (
    LanguageModel,
    ModelVariant,
    PhrasingResult,
    ScoringPlan,
    ScoringRun,
    SoftPrompt,
)
from tests.evaluation.published import imported_variant

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "author", "other_author", "curator", "admin")
LOGIN = "302:/accounts/login/"
ADMIN_LOGIN = "302:/admin/login/"


@dataclass
class World:
    task: Task
    approved: Instruction
    pending: Instruction
    model: LanguageModel
    run: ScoringRun
    result: PhrasingResult
    soft: SoftPrompt
    plan: ScoringPlan


@pytest.fixture
def world(db, django_user_model) -> World:
    users = {}
    for username, role in [("alice", "author"), ("bob", "author"), ("carol", "curator"), ("root", "admin")]:
        user = django_user_model.objects.create_user(username=username)
        user.groups.add(Group.objects.get(name=role))
        user.is_staff = role in ("curator", "admin")
        user.save()
        users[role if username != "bob" else "other_author"] = user
    benchmark = Benchmark.objects.create(slug="b", name="Bench")
    task = Task.objects.create(
        benchmark=benchmark,
        slug="t",
        name="Parity",
        kind="binary",
        answer_format="option_text",
        input_fields=["number"],
        label_space=["yes", "no"],
        max_options=2,
    )
    for n in range(4):
        Instance.objects.create(
            task=task, source_id=str(n), inputs={"number": str(n)}, options=["yes", "no"], gold=n % 2
        )
    crowd = Collection.objects.get(slug="crowd")
    approved = services.instruction_create(
        task=task, template="Is {number} even?", collection=crowd, source="paper", status="approved"
    )
    pending = services.instruction_create(
        task=task, template="Even or not: {number}", collection=crowd, author=users["author"]
    )
    model = LanguageModel.objects.create(name="m", source="/nowhere", family="seq2seq", is_active=False)
    variant = ModelVariant.objects.create(model=model, kind="base")
    run = ScoringRun.objects.create(
        variant=variant, task=task, status="failed", error="boom", trigger="manual"
    )
    result = PhrasingResult.objects.create(
        variant=variant, revision=approved.current_revision, task=task, accuracy=0.5
    )
    soft = SoftPrompt.objects.create(model=model, trigger="manual", config={}, status="failed", error="boom")
    plan = ScoringPlan.objects.create(trigger="import", budget_cells=1)
    ScoringRun.objects.create(variant=variant, task=task, status="planned", trigger="import", plan=plan)
    # A leaderboard row (published results), so the benchmark's view has something to freeze.
    imported_variant("published", {approved: 0.5})
    return World(task, approved, pending, model, run, result, soft, plan)


def _login(client, role: str) -> None:
    if role != "anonymous":
        from django.contrib.auth import get_user_model

        username = {"author": "alice", "other_author": "bob", "curator": "carol", "admin": "root"}[role]
        client.force_login(get_user_model().objects.get(username=username))


def _expect(*per_role: str) -> dict[str, str]:
    return dict(zip(ROLES, per_role))


def every(outcome: str) -> dict[str, str]:
    return dict.fromkeys(ROLES, outcome)


def _snapshot(w) -> str:
    """A snapshot of the world's benchmark (the same one each time: an unchanged view is frozen once)."""
    from evaluation.api_snapshots import snapshot_freeze
    from evaluation.leaderboards.snapshots import View

    return snapshot_freeze(benchmark=w.task.benchmark, view=View())[0].public_id


def _release(w) -> int:
    """A finished release of the world's benchmark, written as a worker writes it (the same one each time)."""
    from core import jobs
    from evaluation.models import ReleaseExport
    from evaluation.releases import export_jobs

    made = ReleaseExport.objects.filter(name="w").first()
    if made is None:
        made = export_jobs.release_export_request(benchmarks=["b"], name="w", version="1")
        jobs.execute(ReleaseExport, made.id, task_id="test")
    return made.id


# (url name, how to build its arguments from the world, method, data, expected per role).
# Outcomes are a status code, or "302:<prefix of the redirect>".
W = World
CASES: list[tuple[str, object, str, dict, dict[str, str]]] = [
    # Citable leaderboard snapshots (docs/snapshots.md): anyone reads them, any signed-in user freezes one.
    ("snapshot_list", None, "get", {}, every("200")),
    ("benchmark_snapshots", lambda w: ["b"], "get", {}, every("200")),
    ("snapshot_new", lambda w: ["b"], "get", {}, _expect(LOGIN, "200", "200", "200", "200")),
    ("snapshot_new", lambda w: ["b"], "post", {"set": "all"}, _expect(LOGIN, *["302:/snapshots/"] * 4)),
    ("snapshot_detail", lambda w: [_snapshot(w)], "get", {}, every("200")),
    ("snapshot_diff_pick", lambda w: [_snapshot(w)], "get", {}, every("302:/snapshots/")),
    ("snapshot_diff", lambda w: [_snapshot(w), _snapshot(w)], "get", {}, every("200")),
    ("snapshot-list", None, "get", {}, every("200")),
    ("snapshot-list", None, "post", {"benchmark": "b"}, _expect("403", "201", "201", "201", "201")),
    ("snapshot-detail", lambda w: [_snapshot(w)], "get", {}, every("200")),
    # Dataset releases (docs/releases.md): admins ask for one, anyone reads and downloads a finished one.
    ("release_list", None, "get", {}, every("200")),
    (
        "release_list",
        None,
        "post",
        {"benchmarks": ["b"], "name": "q", "version": "1"},
        _expect("403", "403", "403", "403", "302:/releases/"),
    ),
    ("release_detail", lambda w: [_release(w)], "get", {}, every("200")),
    (
        "release_detail",
        lambda w: [_release(w)],
        "post",
        {"confirm": "yes"},
        _expect("403", "403", "403", "403", "302:/releases/"),
    ),
    ("releaseexport-list", None, "get", {}, every("200")),
    (
        "releaseexport-list",
        None,
        "post",
        {"benchmarks": ["b"], "name": "p", "version": "1"},
        _expect("403", "403", "403", "403", "202"),
    ),
    ("releaseexport-detail", lambda w: [_release(w)], "get", {}, every("200")),
    (
        "releaseexport-detail",
        lambda w: [_release(w)],
        "delete",
        {},
        _expect("403", "403", "403", "403", "204"),
    ),
    ("releaseexport-file", lambda w: [_release(w), "release.json"], "get", {}, every("200")),
    ("releaseexport-file-slash", lambda w: [_release(w), "release.json"], "get", {}, every("200")),
    ("snapshot-leaderboard", lambda w: [_snapshot(w)], "get", {}, every("200")),
    ("snapshot-diff", lambda w: [_snapshot(w), _snapshot(w)], "get", {}, every("200")),
    ("home", None, "get", {}, every("200")),
    ("benchmark_detail", lambda w: ["b"], "get", {}, every("200")),
    ("task_detail", lambda w: ["b", "t"], "get", {}, every("200")),
    ("leaderboard", lambda w: ["b"], "get", {}, every("200")),
    ("task_instance", lambda w: ["b", "t", w.task.instances.first().id], "get", {}, every("200")),
    ("compare", lambda w: ["b"], "get", {}, every("200")),
    ("task_results", lambda w: ["b", "t"], "get", {}, every("200")),
    ("phrasing_detail", lambda w: [w.approved.id], "get", {}, every("200")),
    ("phrasing_detail", lambda w: [w.pending.id], "get", {}, _expect("404", "200", "404", "200", "200")),
    # Tags on a phrasing's page: its author and curators (any status); the page answers with a redirect.
    (
        "phrasing_detail",
        lambda w: [w.pending.id],
        "post",
        {"tags": ["terse"]},
        _expect("404", "302:/phrasings/", "404", "302:/phrasings/", "302:/phrasings/"),
    ),
    (
        "phrasing_detail",
        lambda w: [w.approved.id],
        "post",
        {"tags": ["terse"]},
        _expect("403", "403", "403", "302:/phrasings/", "302:/phrasings/"),
    ),
    ("phrasing_new", lambda w: ["b", "t"], "get", {}, _expect(LOGIN, "200", "200", "200", "200")),
    (
        "phrasing_new",
        lambda w: ["b", "t"],
        "post",
        {"template": "Tell me if {number} is even."},
        _expect(
            LOGIN, "302:/me/phrasings/", "302:/me/phrasings/", "302:/me/phrasings/", "302:/me/phrasings/"
        ),
    ),
    (
        "phrasing_preview",
        lambda w: ["b", "t"],
        "post",
        {"template": "Is {number} odd?"},
        _expect(LOGIN, "200", "200", "200", "200"),
    ),
    # Another author may not see a pending phrasing, so for them it does not exist (404, not 403).
    ("phrasing_edit", lambda w: [w.pending.id], "get", {}, _expect(LOGIN, "200", "404", "403", "200")),
    (
        "phrasing_edit",
        lambda w: [w.pending.id],
        "post",
        {"template": "Even, or not? {number}"},
        _expect(LOGIN, "302:/me/phrasings/", "404", "403", "302:/me/phrasings/"),
    ),
    ("phrasing_edit", lambda w: [w.approved.id], "get", {}, _expect(LOGIN, "403", "403", "403", "403")),
    ("my_phrasings", None, "get", {}, _expect(LOGIN, "200", "200", "200", "200")),
    ("curation_queue", None, "get", {}, _expect(LOGIN, "403", "403", "200", "200")),
    (
        "curation_review",
        lambda w: [w.pending.id],
        "post",
        {"decision": "approved", "revision": "PENDING_REVISION"},
        _expect(LOGIN, "403", "403", "302:/curate/", "302:/curate/"),
    ),
    (
        "curation_bulk",
        None,
        "post",
        {"decision": "rejected", "reason": "unclear", "ids": "PENDING:PENDING_REVISION"},
        _expect(LOGIN, "403", "403", "302:/curate/", "302:/curate/"),
    ),
    ("curation_upload", None, "get", {}, _expect(LOGIN, "403", "403", "200", "200")),
    (
        "curation_upload",
        None,
        "post",
        {"file": "UPLOAD"},
        _expect(LOGIN, "403", "403", "302:/curate/", "302:/curate/"),
    ),
    ("model_list", None, "get", {}, every("200")),
    ("model_detail", lambda w: ["m"], "get", {}, every("200")),
    ("model_score", lambda w: ["m"], "post", {}, _expect(LOGIN, "403", "403", "403", "302:/models/m/")),
    (
        "model_check_retry",
        lambda w: ["m"],
        "post",
        {},
        _expect(LOGIN, "403", "403", "403", "302:/models/m/"),
    ),
    ("model_align", lambda w: ["m"], "post", {}, _expect(LOGIN, "403", "403", "403", "302:/softprompts/")),
    ("model_calibrate", lambda w: ["m"], "post", {}, _expect(LOGIN, "403", "403", "403", "302:/models/m/")),
    ("softprompt_detail", lambda w: [w.soft.id], "get", {}, every("200")),
    (
        "softprompt_cancel",
        lambda w: [w.soft.id],
        "post",
        {},
        _expect(LOGIN, "403", "403", "302:/softprompts/", "302:/softprompts/"),
    ),
    (
        "softprompt_retry",
        lambda w: [w.soft.id],
        "post",
        {},
        _expect(LOGIN, "403", "403", "302:/softprompts/", "302:/softprompts/"),
    ),
    ("run_list", None, "get", {}, every("200")),
    ("run_detail", lambda w: [w.run.id], "get", {}, every("200")),
    (
        "run_cancel",
        lambda w: [w.run.id],
        "post",
        {},
        _expect(LOGIN, "403", "403", "302:/runs/", "302:/runs/"),
    ),
    ("run_retry", lambda w: [w.run.id], "post", {}, _expect(LOGIN, "403", "403", "302:/runs/", "302:/runs/")),
    (
        "task_sample",
        lambda w: ["b", "t"],
        "post",
        {"size": "all"},
        _expect(LOGIN, "403", "403", "403", "302:/b/b/t/"),
    ),
    ("plan_list", None, "get", {}, every("200")),
    ("plan_detail", lambda w: [w.plan.id], "get", {}, every("200")),
    ("plan_start", lambda w: [w.plan.id], "post", {}, _expect(LOGIN, "403", "403", "403", "302:/plans/")),
    ("plan_discard", lambda w: [w.plan.id], "post", {}, _expect(LOGIN, "403", "403", "403", "302:/plans/")),
    ("healthz", None, "get", {}, every("200")),
    ("status", None, "get", {}, every("200")),
    ("status_ping", None, "post", {}, every("302:/status/")),
    ("signup", None, "get", {}, _expect("200", "302:/", "302:/", "302:/", "302:/")),
    ("login", None, "get", {}, every("200")),
    ("logout", None, "post", {}, every("302:/")),
    ("password_change", None, "get", {}, _expect(LOGIN, "200", "200", "200", "200")),
    ("password_change_done", None, "get", {}, _expect(LOGIN, "200", "200", "200", "200")),
    ("password_reset", None, "get", {}, every("200")),
    ("password_reset_done", None, "get", {}, every("200")),
    ("password_reset_confirm", lambda w: ["MQ", "bad-token"], "get", {}, every("200")),
    ("password_reset_complete", None, "get", {}, every("200")),
    # Django admin: curators and admins only (staff), and each model page by its group permissions.
    ("admin:index", None, "get", {}, _expect(ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, "200", "200")),
    (
        "admin:collection_instruction_changelist",
        None,
        "get",
        {},
        _expect(ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, "200", "200"),
    ),
    (
        "admin:collection_task_add",
        None,
        "get",
        {},
        _expect(ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, "403", "200"),
    ),
    (
        "admin:evaluation_languagemodel_add",
        None,
        "get",
        {},
        _expect(ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, "403", "200"),
    ),
    (
        "admin:evaluation_phrasingresult_changelist",
        None,
        "get",
        {},
        _expect(ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, "200", "200"),
    ),
    # The API.
    ("api-root", None, "get", {}, every("200")),
    ("api_leaderboard", None, "get", {"benchmark": "b"}, every("200")),
    # One model only: nothing to compare with, said with a 400.
    ("api_compare", None, "get", {"benchmark": "b", "a": "1", "b": "2"}, every("400")),
    ("api_schema", None, "get", {}, every("200")),
    ("api_docs", None, "get", {}, every("200")),
    ("benchmark-list", None, "get", {}, every("200")),
    ("benchmark-detail", lambda w: ["b"], "get", {}, every("200")),
    ("task-list", None, "get", {}, every("200")),
    ("task-detail", lambda w: [w.task.id], "get", {}, every("200")),
    ("instruction-list", None, "get", {}, every("200")),
    ("instruction-detail", lambda w: [w.approved.id], "get", {}, every("200")),
    ("instruction-detail", lambda w: [w.pending.id], "get", {}, _expect("404", "200", "404", "200", "200")),
    (
        "instruction-detail",
        lambda w: [w.pending.id],
        "patch",
        {"template": "Even or odd? {number}"},
        _expect("403", "200", "404", "403", "200"),
    ),
    (
        "instruction-list",
        None,
        "post",
        {"task": "TASK", "template": "Is {number} divisible by 2?"},
        _expect("403", "201", "201", "201", "201"),
    ),
    (
        "instruction-check",
        None,
        "post",
        {"task": "TASK", "template": "Is {number} even?"},
        _expect("403", "200", "200", "200", "200"),
    ),
    (
        "instruction-review",
        lambda w: [w.pending.id],
        "post",
        {"decision": "approved", "revision": "PENDING_REVISION"},
        _expect("403", "403", "403", "200", "200"),
    ),
    (
        "instruction-tags",
        lambda w: [w.pending.id],
        "post",
        {"tags": ["terse"]},
        _expect("403", "200", "404", "200", "200"),
    ),
    ("languagemodel-list", None, "get", {}, every("200")),
    ("languagemodel-detail", lambda w: ["m"], "get", {}, every("200")),
    (
        "languagemodel-list",
        None,
        "post",
        {"name": "n2", "source": "/x", "family": "causal"},
        _expect("403", "403", "403", "403", "201"),
    ),
    (
        "languagemodel-retry-check",
        lambda w: ["m"],
        "post",
        {},
        _expect("403", "403", "403", "403", "200"),
    ),
    ("scoringrun-list", None, "get", {}, every("200")),
    ("scoringrun-detail", lambda w: [w.run.id], "get", {}, every("200")),
    ("scoringrun-cancel", lambda w: [w.run.id], "post", {}, _expect("403", "403", "403", "400", "400")),
    ("scoringrun-retry", lambda w: [w.run.id], "post", {}, _expect("403", "403", "403", "200", "200")),
    ("scoringplan-list", None, "get", {}, every("200")),
    ("scoringplan-detail", lambda w: [w.plan.id], "get", {}, every("200")),
    ("scoringplan-start", lambda w: [w.plan.id], "post", {}, _expect("403", "403", "403", "403", "200")),
    ("scoringplan-discard", lambda w: [w.plan.id], "post", {}, _expect("403", "403", "403", "403", "200")),
    ("phrasingresult-list", None, "get", {}, every("200")),
    ("phrasingresult-detail", lambda w: [w.result.id], "get", {}, every("200")),
]


def _request(client, world: World, name: str, args, method: str, data: dict):
    url = reverse(name, args=args(world) if args else None)
    placeholders = {
        "TASK": lambda: world.task.id,
        "PENDING": lambda: world.pending.id,
        "PENDING_REVISION": lambda: world.pending.current_revision_id,
        "PENDING:PENDING_REVISION": lambda: f"{world.pending.id}:{world.pending.current_revision_id}",
        "UPLOAD": lambda: SimpleUploadedFile(
            "p.csv", b"task,template,source\nb/t,Say if {number} is even.,test\n"
        ),
    }
    data = {k: placeholders[v]() if isinstance(v, str) and v in placeholders else v for k, v in data.items()}
    if name.startswith(
        (
            "api",
            "benchmark-",
            "task-",
            "instruction-",
            "languagemodel-",
            "scoringrun-",
            "scoringplan-",
            "phrasingresult-",
            "snapshot-",
        )
    ):
        if method == "get":
            return client.get(url, data)
        return getattr(client, method)(url, data, content_type="application/json")
    return getattr(client, method)(url, data)


def _outcome(response) -> str:
    if response.status_code in (301, 302):
        return f"{response.status_code}:{response['Location']}"
    return str(response.status_code)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(
    "name,args,method,data,expected", CASES, ids=[f"{c[2]}-{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_each_role_gets_what_it_may(client, world, role, name, args, method, data, expected):
    _login(client, role)
    outcome = _outcome(_request(client, world, name, args, method, data))
    wanted = expected[role]
    if wanted.startswith("302:"):
        assert outcome.startswith(wanted), f"{role} {method.upper()} {name}: got {outcome}, wanted {wanted}"
    else:
        assert outcome == wanted, f"{role} {method.upper()} {name}: got {outcome}, wanted {wanted}"


def _url_names(patterns, namespace: str = "") -> set[str]:
    names = set()
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            if pattern.namespace == "admin":
                continue  # Django's own admin: covered above by its index and one page per permission kind
            names |= _url_names(pattern.url_patterns, pattern.namespace or namespace)
        elif isinstance(pattern, URLPattern) and pattern.name:
            names.add(f"{namespace}:{pattern.name}" if namespace else pattern.name)
    return names


def test_every_page_and_endpoint_has_a_permission_row():
    covered = {case[0] for case in CASES}
    missing = _url_names(get_resolver().url_patterns) - covered
    assert not missing, f"add permission rows for: {sorted(missing)}"


WRITES = [case for case in CASES if case[2] != "get"]


@pytest.mark.parametrize("name,args,method,data,expected", WRITES, ids=[f"{c[2]}-{c[0]}" for c in WRITES])
def test_every_write_is_refused_without_a_csrf_token(world, name, args, method, data, expected):
    """Forms, htmx requests and session-authenticated API writes all need the CSRF token (the pages send it
    in a hidden field or, for htmx, in the X-CSRFToken header set on <body>)."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(get_user_model().objects.get(username="root"))
    response = _request(client, world, name, args, method, data)
    assert response.status_code == 403, (
        f"{method.upper()} {name} without a CSRF token: {response.status_code}"
    )
    assert b"CSRF" in response.content
