"""Stored XSS: phrasings, task and model names and curators' reasons that carry HTML and script are shown
escaped on every page that shows them, inside chart data and in exports."""

import json

import pytest
from django.urls import reverse

from collection import services
from collection.models import Benchmark, Collection, Instance, Task
from evaluation.models import BenchmarkSummary, LanguageModel, ModelVariant, PhrasingResult, TaskSummary

pytestmark = pytest.mark.django_db

SCRIPT = '<script>alert("x")</script>'
IMG = "<img src=x onerror=alert(1)>"


@pytest.fixture
def hostile(alice, carol):
    benchmark = Benchmark.objects.create(slug="b", name=f"Bench {SCRIPT}", description=IMG)
    task = Task.objects.create(
        benchmark=benchmark,
        slug="t",
        name=f"Task {SCRIPT}",
        description=IMG,
        kind="binary",
        answer_format="option_text",
        input_fields=["number"],
        label_space=["yes", "no"],
        max_options=2,
    )
    for n in range(3):
        Instance.objects.create(
            task=task, source_id=str(n), inputs={"number": f"{n} {IMG}"}, options=["yes", "no"], gold=0
        )
    crowd = Collection.objects.get(slug="crowd")
    approved = services.instruction_create(
        task=task,
        template=f"{SCRIPT} is {{number}} even?",
        collection=crowd,
        source="paper",
        status="approved",
    )
    pending = services.instruction_submit(task=task, template=f"{IMG} {{number}}?", author=alice)
    rejected = services.instruction_submit(task=task, template="Even: {number}", author=alice)
    services.instruction_review(
        instruction=rejected, reviewer=carol, status="rejected", reason=f"No {SCRIPT}"
    )
    model = LanguageModel.objects.create(
        name="m", description=SCRIPT, source="/x", family="seq2seq", is_active=False
    )
    variant = ModelVariant.objects.create(model=model, kind="base")
    PhrasingResult.objects.create(
        variant=variant, revision=approved.current_revision, task=task, accuracy=0.5
    )
    figures = {
        "avgp": 0.5,
        "std": 0.0,
        "min": 0.5,
        "q10": 0.5,
        "q25": 0.5,
        "median": 0.5,
        "q75": 0.5,
        "maxp": 0.5,
        "spread": 0.0,
        "cps": 0.5,
        "phrasings": 1,
        "tasks": 1,
        "ci": {},
    }
    TaskSummary.objects.create(variant=variant, task=task, phrasing_set="all", figures=figures)
    BenchmarkSummary.objects.create(variant=variant, benchmark=benchmark, phrasing_set="all", figures=figures)
    return {"task": task, "approved": approved, "pending": pending}


def assert_escaped(html: str) -> None:
    assert SCRIPT not in html and IMG not in html
    assert "<script>alert" not in html


@pytest.mark.parametrize("viewer", ["anonymous", "alice", "carol"])
def test_pages_show_hostile_text_escaped(client, hostile, viewer, django_user_model):
    if viewer != "anonymous":
        client.force_login(django_user_model.objects.get(username=viewer))
    urls = [
        reverse("home"),
        reverse("benchmark_detail", args=["b"]),
        reverse("task_detail", args=["b", "t"]),
        reverse("leaderboard", args=["b"]),
        reverse("task_results", args=["b", "t"]),
        reverse("phrasing_detail", args=[hostile["approved"].id]),
        reverse("model_detail", args=["m"]),
    ]
    if viewer == "alice":
        urls += [reverse("my_phrasings"), reverse("phrasing_new", args=["b", "t"])]
    if viewer == "carol":
        urls += [reverse("curation_queue")]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        assert_escaped(response.content.decode())
    if viewer == "alice":
        page = client.get(reverse("my_phrasings")).content.decode()
        assert "No &lt;script&gt;" in page  # the reason is there, escaped
        preview = client.post(
            reverse("phrasing_preview", args=["b", "t"]), {"template": f"{SCRIPT} {{number}}"}
        )
        assert_escaped(preview.content.decode())


def test_chart_data_is_json_that_cannot_close_its_script_tag(client, hostile):
    page = client.get(reverse("leaderboard", args=["b"])).content.decode()
    tag = page.index('id="observed-chart"')
    start = page.index(">", tag) + 1
    data = page[start : page.index("</script>", start)]
    assert "<" not in data  # json_script escapes < > & as \\u003C ...
    assert json.loads(data)["data"][0]["x"] == ["m"]


def test_exports_are_served_as_data_not_html(client, hostile):
    for fmt, kind in [("csv", "text/csv"), ("json", "application/json")]:
        response = client.get(reverse("leaderboard", args=["b"]), {"format": fmt})
        assert response.status_code == 200
        assert response["Content-Type"].startswith(kind)
        assert response["Content-Disposition"].startswith("attachment")
