"""A budget before bulk work (evaluation/runs/budget.py), lanes at creation and retry, and models limited to
benchmarks: through the services, the pages, the API and the score command. Nothing here loads a model: the
runs are planned or queued, never executed (test_worker_lanes.py runs them in a real worker)."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.urls import reverse
from rest_framework.authtoken.models import Token

from collection import events
from collection import services as collection_services
from collection.demo import load_demo
from collection.models import Benchmark, Collection, Instance, Task
from collection.selectors import task_eval_sample_ids
from core.jobs import JobStatus
from evaluation.models import LanguageModel, RunTrigger, ScoringPlan, ScoringRun
from evaluation.robustness import softprompts
from evaluation.runs import budget, registry, scoring

pytestmark = pytest.mark.django_db
SAMPLE = 2


@pytest.fixture
def demo(db):
    load_demo()
    Task.objects.filter(benchmark__slug="demo").update(eval_sample_size=SAMPLE)


def ready_model(name: str = "m", **fields) -> LanguageModel:
    # Ready as a passed check leaves it; nothing here loads it.
    model = LanguageModel.objects.create(name=name, source="/nowhere", family="seq2seq", **fields)
    scoring.base_variant(model)
    return model


def sent_tasks(callbacks) -> set[str]:
    """The Celery task names the captured on-commit callbacks of core.jobs.send_on_commit would send."""
    names = set()
    for callback in callbacks:
        cells = dict(zip(callback.__code__.co_freevars, callback.__closure__ or ()))
        names.add(cells["task_name"].cell_contents if "task_name" in cells else repr(callback))
    return names


def demo_cells(model) -> int:
    return sum(
        len(revs) * SAMPLE
        for revs in scoring.revisions_by_task(scoring.approved_revisions(model=model)).values()
    )


def test_bulk_work_over_the_budget_is_planned_and_nothing_is_sent_until_an_admin_starts_it(
    demo, settings, django_capture_on_commit_callbacks
):
    model = ready_model()
    settings.SCORING_BUDGET_CELLS = demo_cells(model) - 1
    with django_capture_on_commit_callbacks() as sent:
        runs = registry.language_model_score_missing(model=model)
    assert sent == []
    assert {run.status for run in runs} == {JobStatus.PLANNED}
    assert {run.lane for run in runs} == {ScoringRun.Lane.BULK}
    (plan,) = {run.plan for run in runs}
    assert "Planned 4 run(s)" in budget.bulk_summary(runs) and f"plan {plan.id}" in budget.bulk_summary(runs)
    (row,) = budget.plan_rows(plan)
    assert (row.model, row.runs, row.cells, row.cached, row.seconds) == ("m", 4, demo_cells(model), 0, None)

    with django_capture_on_commit_callbacks() as sent:
        assert budget.scoring_plan_start(plan=plan) == 4
    assert len(sent) == 4
    assert set(ScoringRun.objects.values_list("status", flat=True)) == {JobStatus.QUEUED}
    with pytest.raises(Exception, match="only a planned one starts"):
        budget.scoring_plan_start(plan=plan)


def test_bulk_work_within_the_budget_is_queued_at_once_on_the_bulk_lane(
    demo, settings, django_capture_on_commit_callbacks
):
    model = ready_model()
    settings.SCORING_BUDGET_CELLS = demo_cells(model)
    with django_capture_on_commit_callbacks() as sent:
        runs = registry.language_model_score_missing(model=model)
    assert len(sent) == len(runs) == 4
    assert {(run.status, run.lane, run.plan) for run in runs} == {
        (JobStatus.QUEUED, ScoringRun.Lane.BULK, None)
    }
    assert not ScoringPlan.objects.exists()


def test_an_import_plans_nothing_that_a_pending_run_will_score(demo, settings):
    """bin/run's load_demo says "phrasings imported" at every start; each start used to add a plan of the same
    cells (the upgrade check found plan after plan of 26,800 cells)."""
    ready_model("first")
    settings.SCORING_BUDGET_CELLS = 1
    events.phrasings_imported.send(sender=None)
    events.phrasings_imported.send(sender=None)
    assert ScoringPlan.objects.count() == 1
    queued = ScoringRun.objects.filter(status=JobStatus.PLANNED).count()
    settings.SCORING_BUDGET_CELLS = 10**6  # under the budget: queued, not planned; still nothing twice
    events.phrasings_imported.send(sender=None)
    assert ScoringRun.objects.count() == queued


def test_an_import_over_the_budget_is_one_plan_for_every_model_and_says_so(demo, settings):
    first = ready_model("first")
    ready_model("second")
    settings.SCORING_BUDGET_CELLS = 1
    lines = [line for _, said in events.phrasings_imported.send(sender=None) for line in said]
    (plan,) = ScoringPlan.objects.all()
    assert lines[0].startswith("Planned 8 run(s)")
    assert any(line.strip().startswith(f"first: 4 run(s), {demo_cells(first)} cells") for line in lines)
    assert {row.model for row in budget.plan_rows(plan)} == {"first", "second"}


def test_the_plan_page_shows_the_cost_per_model_and_only_admins_start_it(
    demo, settings, client, carol, admin_user
):
    settings.SCORING_BUDGET_CELLS = 1
    runs = registry.language_model_score_missing(model=ready_model())
    plan = runs[0].plan
    client.force_login(carol)
    page = client.get(reverse("plan_detail", args=[plan.id])).content.decode()
    assert f"{demo_cells(LanguageModel.objects.get())}" in page and "Start it" not in page
    assert client.post(reverse("plan_start", args=[plan.id])).status_code == 403
    client.force_login(admin_user)
    assert "Start it" in client.get(reverse("plan_detail", args=[plan.id])).content.decode()
    response = client.post(reverse("plan_start", args=[plan.id]))
    assert response.status_code == 302
    plan.refresh_from_db()
    assert plan.status == ScoringPlan.Status.STARTED and plan.decided_by == admin_user
    # Started, its runs wait on the bulk lane, each with its place in the queue.
    assert "#1 in the queue" in client.get(reverse("run_list")).content.decode()


def test_admins_start_and_discard_plans_through_the_api(demo, settings, client, admin_user):
    settings.SCORING_BUDGET_CELLS = 1
    first = registry.language_model_score_missing(model=ready_model("first"))[0].plan
    second = registry.language_model_score_missing(model=ready_model("second"))[0].plan
    headers = {"HTTP_AUTHORIZATION": f"Token {Token.objects.create(user=admin_user).key}"}
    listed = client.get("/api/plans/", **headers).json()["results"]
    assert {p["id"] for p in listed} == {first.id, second.id}
    assert listed[0]["models"][0]["to_compute"] > 0
    assert client.post(f"/api/plans/{first.id}/start/", **headers).json()["status"] == "started"
    assert client.post(f"/api/plans/{first.id}/start/", **headers).status_code == 409
    assert client.post(f"/api/plans/{second.id}/discard/", **headers).json()["status"] == "discarded"
    assert set(second.runs.values_list("status", flat=True)) == {JobStatus.CANCELLED}
    assert set(first.runs.values_list("status", flat=True)) == {JobStatus.QUEUED}


def test_the_score_command_prints_the_plans_and_starts_one(demo, settings, capsys):
    settings.SCORING_BUDGET_CELLS = 1
    plan = registry.language_model_score_missing(model=ready_model())[0].plan
    call_command("score", "--plans")
    out = capsys.readouterr().out
    assert f"Plan {plan.id}" in out and "m: 4 run(s)" in out and "no throughput measured yet" in out
    assert ScoringRun.objects.filter(status=JobStatus.PLANNED).count() == 4
    call_command("score", "--start-planned", str(plan.id))
    assert "started: 4 run(s)" in capsys.readouterr().out
    assert ScoringRun.objects.filter(status=JobStatus.QUEUED).count() == 4


def test_an_approval_is_interactive_and_a_retry_of_a_small_run_too(demo, client, alice, carol):
    model = ready_model()
    task = Task.objects.filter(benchmark__slug="demo", parent=None).first()
    phrasing = collection_services.instruction_create(
        task=task,
        template="Tell me: {question}",
        collection=Collection.objects.get(slug="crowd"),
        author=alice,
    )
    collection_services.instruction_review(instruction=phrasing, reviewer=carol, status="approved")
    (run,) = ScoringRun.objects.filter(variant__model=model)
    assert (run.lane, run.status) == (ScoringRun.Lane.INTERACTIVE, JobStatus.QUEUED)
    client.force_login(alice)  # the author sees where it stands
    assert "#1 in the queue" in client.get(reverse("my_phrasings")).content.decode()

    bulk = scoring.scoring_runs_for_variant(variant=run.variant, trigger=RunTrigger.MANUAL, enqueue=False)[0]
    assert bulk.lane == ScoringRun.Lane.BULK
    ScoringRun.objects.filter(id=bulk.id).update(status=JobStatus.FAILED, error="boom")
    bulk.refresh_from_db()
    assert scoring.scoring_run_retry(run=bulk).lane == ScoringRun.Lane.INTERACTIVE


def test_a_model_limited_to_a_benchmark_scores_nothing_outside_it(demo, settings, alice, carol):
    settings.SCORING_BUDGET_CELLS = 10**9
    other = Benchmark.objects.create(slug="other", name="Other")
    task = Task.objects.create(
        benchmark=other,
        slug="t",
        name="T",
        kind="binary",
        answer_format="option_text",
        input_fields=["number"],
        label_space=["yes", "no"],
        max_options=2,
    )
    Instance.objects.create(task=task, source_id="1", inputs={"number": "1"}, options=["yes", "no"], gold=1)
    crowd = Collection.objects.get(slug="crowd")
    collection_services.instruction_create(
        task=task, template="Is {number} odd?", collection=crowd, source="paper", status="approved"
    )
    limited = ready_model("limited")
    limited.benchmarks.set([Benchmark.objects.get(slug="demo")])
    everywhere = ready_model("everywhere")

    scoring.scoring_for_active_models(trigger=RunTrigger.IMPORT)
    assert not ScoringRun.objects.filter(variant__model=limited, task__benchmark=other).exists()
    training, heldout = softprompts.training_pool(limited)  # nor does its soft prompt learn from them
    assert {r.instruction.task.benchmark.slug for r in training + heldout} == {"demo"}
    assert "other" in {
        r.instruction.task.benchmark.slug for r in sum(softprompts.training_pool(everywhere), [])
    }
    assert ScoringRun.objects.filter(variant__model=limited, task__benchmark__slug="demo").count() == 4
    assert ScoringRun.objects.filter(variant__model=everywhere, task__benchmark=other).count() == 1

    pending = collection_services.instruction_create(
        task=task, template="Is {number} an odd number?", collection=crowd, author=alice
    )
    collection_services.instruction_review(instruction=pending, reviewer=carol, status="approved")
    assert set(
        ScoringRun.objects.filter(instruction=pending).values_list("variant__model__name", flat=True)
    ) == {"everywhere"}


def test_an_imported_task_scores_a_sample_and_all_instances_are_one_click_away(
    tmp_path, settings, client, admin_user, carol, django_capture_on_commit_callbacks
):
    settings.EVAL_SAMPLE_SIZE, settings.SCORING_BUDGET_CELLS = 3, 10**9
    rows = [
        {"task": "big", "id": str(n), "inputs": {"question": f"{n}?"}, "options": ["x", "y"], "answer": n % 2}
        for n in range(8)
    ]
    path = tmp_path / "tasks.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in rows), encoding="utf-8")
    call_command("import_tasks", path, "--benchmark", "mine")
    task = Task.objects.get(slug="big")
    assert task.eval_sample_size == 3 and len(task_eval_sample_ids(task)) == 3
    collection_services.instruction_create(
        task=task,
        template="Answer: {question}",
        collection=Collection.objects.get(slug="crowd"),
        source="x",
        status="approved",
    )
    model = ready_model()
    scoring.scoring_for_active_models()
    assert ScoringRun.objects.get(variant__model=model).total_cells == 3

    url = reverse("task_sample", args=["mine", "big"])
    client.force_login(carol)
    assert client.post(url, {"size": "all"}).status_code == 403
    client.force_login(admin_user)
    page = client.get(reverse("task_detail", args=["mine", "big"])).content.decode()
    assert "a fixed sample of 3 of them" in page and "Score all 8 instances" in page
    with django_capture_on_commit_callbacks() as sent:
        client.post(url, {"size": "all"})
    task.refresh_from_db()
    assert task.eval_sample_size is None and len(task_eval_sample_ids(task)) == 8
    # What the models now lack is queued as bulk work, over every instance.
    latest = ScoringRun.objects.filter(variant__model=model).latest("id")
    assert (latest.lane, latest.status, latest.total_cells, len(sent)) == ("bulk", "queued", 8, 1)
    call_command("import_tasks", path, "--benchmark", "mine")  # a re-import keeps the admin's choice
    task.refresh_from_db()
    assert task.eval_sample_size is None


def test_the_readmes_real_benchmark_import_queues_nothing_on_the_demo_model_and_plans_the_rest(
    demo, shared_data, settings, capsys, django_capture_on_commit_callbacks
):
    """As after `bin/run` (the demo model, limited to the demo) with one more model registered: importing
    BIG-bench queues nothing on the demo model outside the demo, and over the budget nothing is sent until
    an admin starts it. (Three tasks' own prompts on a 100-instance sample stand in for the study's
    phrasings, ~100x more cells, so the budget is scaled down with them.)"""
    settings.EVAL_SAMPLE_SIZE, settings.SCORING_BUDGET_CELLS = 100, 200
    demo_model = ready_model("demo-t5")
    demo_model.benchmarks.set([Benchmark.objects.get(slug="demo")])
    other = ready_model("flan-t5-base")
    folders = [
        str(shared_data / "bigbench_lite_tasks" / name)
        for name in ("strategyqa", "winowhy", "novel_concepts")
    ]
    with django_capture_on_commit_callbacks() as sent:
        call_command("import_bigbench", *folders)
    out = capsys.readouterr().out
    assert sent_tasks(sent) <= {"collection.embed_revision"}  # no scoring (the phrasings' embeddings)
    assert (
        not ScoringRun.objects.filter(variant__model=demo_model)
        .exclude(task__benchmark__slug="demo")
        .exists()
    )
    runs = ScoringRun.objects.filter(variant__model=other)
    assert runs.exists() and set(runs.values_list("status", flat=True)) == {JobStatus.PLANNED}
    assert sum(run.to_compute for run in runs) > settings.SCORING_BUDGET_CELLS
    assert "Planned" in out and "flan-t5-base: 7 run(s)" in out
