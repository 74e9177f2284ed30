"""Leaderboard and task result pages: figures, sorting, filters, exports, charts and a fixed query count."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.conf import settings
from django.urls import reverse

from collection.demo import load_demo
from collection.models import Collection, Task
from evaluation.leaderboards.aggregates import aggregates_refresh_many
from evaluation.models import BenchmarkSummary, PhrasingResult, Prediction
from evaluation.runs import registry, scoring

pytestmark = pytest.mark.django_db


@pytest.fixture
def board(tiny_models, django_capture_on_commit_callbacks):
    load_demo(generated_per_task=0)
    Task.objects.filter(benchmark__slug="demo").update(eval_sample_size=4)
    with django_capture_on_commit_callbacks(execute=True):
        for name, arch, family in [("tiny-t5", "t5", "seq2seq"), ("tiny-gpt2", "gpt2", "causal")]:
            registry.language_model_register(
                name=name,
                source=str(tiny_models[arch]),
                family=family,
                tuned_on=[Collection.objects.get(slug="demotune")],
            )
    return BenchmarkSummary.objects.filter(benchmark__slug="demo", phrasing_set="all", task_kind="")


def test_the_leaderboard_shows_every_variant_with_intervals_and_charts(client, board):
    page = client.get(reverse("leaderboard", args=["demo"])).content.decode()
    assert "tiny-t5" in page and "tiny-gpt2" in page
    avgp = board.get(variant__model__name="tiny-t5").figures["avgp"]
    assert f"{100 * avgp:.1f}" in page
    assert 'data-chart="observed-chart"' in page and 'id="observed-chart"' in page
    assert "vendor/plotly.min.js" in page and "macro average" in page


def test_sorting_and_filters_through_htmx_return_the_board_fragment(client, board):
    url = reverse("leaderboard", args=["demo"])
    fragment = client.get(url, {"set": "unobserved", "sort": "model", "dir": "asc"}, HTTP_HX_REQUEST="true")
    html = fragment.content.decode()
    assert 'id="board"' in html and "<h1>" not in html
    assert html.index("tiny-gpt2") < html.index("tiny-t5")
    html = client.get(url, {"sort": "model", "dir": "desc"}, HTTP_HX_REQUEST="true").content.decode()
    assert html.index("tiny-t5") < html.index("tiny-gpt2")


def test_the_observed_view_names_the_models_that_have_no_observed_phrasings(
    client, board, tiny_models, django_capture_on_commit_callbacks
):
    # They used to be left out of the view unsaid, as if never scored.
    with django_capture_on_commit_callbacks(execute=True):
        registry.language_model_register(name="tiny-llama", source=str(tiny_models["llama"]), family="causal")
    url = reverse("leaderboard", args=["demo"])
    observed = client.get(url, {"set": "observed"}).content.decode()
    named = observed[observed.index('id="without-set"') :].split("</span>")[0]
    assert "tiny-llama" in named and "tiny-t5" not in named and "tiny-gpt2" not in named
    assert "tuned on none of this benchmark's collections" in named
    assert 'id="without-set"' not in client.get(url, {"set": "unobserved"}).content.decode()
    assert 'id="without-set"' not in client.get(url).content.decode()


def test_exports_carry_the_same_numbers(client, board):
    url = reverse("leaderboard", args=["demo"])
    rows = list(csv.DictReader(io.StringIO(client.get(url, {"format": "csv"}).content.decode())))
    records = json.loads(client.get(url, {"format": "json"}).content)
    want = {s.variant.model.name: s.figures["avgp"] for s in board}
    # Exports round the fractions to 6 decimals (evaluation/leaderboards/exports.py), and each row says so.
    assert {r["model"]: float(r["avgp"]) for r in rows} == pytest.approx(want, abs=5e-7)
    assert {r["model"]: r["avgp"] for r in records} == pytest.approx(want, abs=5e-7)
    assert all(len(str(r["avgp"]).split(".")[-1]) <= 6 for r in records)
    assert all("accuracies and their differences as fractions of 1" in r["scale"] for r in [*rows, *records])
    assert all("posix and pdr as the plain ratios" in r["scale"] for r in rows)
    assert all(r["ci_method"] == "instances and phrasings" for r in records)


def test_the_leaderboard_runs_a_fixed_number_of_queries(
    client, board, tiny_models, django_assert_max_num_queries
):
    url = reverse("leaderboard", args=["demo"])
    # A browser's second page: it holds its CSRF cookie, so the page cache checks the data version first
    # (both requests below miss it: the first is cold, the second follows new figures).
    client.cookies[settings.CSRF_COOKIE_NAME] = "x" * 32
    # 10: the page cache's version, the estimated rows' summaries, the ground's tasks and the ranked rows'
    # stored replicates (their rank intervals)
    with django_assert_max_num_queries(10) as few:
        client.get(url)
    # Twice the models and results: still the same number of queries.
    extra = registry.language_model_register(
        name="tiny-llama", source=str(tiny_models["llama"]), family="causal", score=False
    )
    variant = scoring.base_variant(extra)
    copies = list(Prediction.objects.filter(variant__model__name="tiny-t5"))
    for prediction in copies:
        prediction.pk, prediction.variant = None, variant
    Prediction.objects.bulk_create(copies)
    aggregates_refresh_many(
        {(variant.id, t) for t in Task.objects.filter(benchmark__slug="demo").values_list("id", flat=True)}
    )
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert "tiny-llama" in client.get(url).content.decode()


def test_the_task_page_shows_the_grid_best_and_worst_first(client, board, django_assert_max_num_queries):
    task = Task.objects.get(benchmark__slug="demo", slug="parity")
    url = reverse("task_results", args=["demo", "parity"])
    with django_assert_max_num_queries(11):  # 11: one for the grid's estimated cells
        page = client.get(url).content.decode()
    assert "Phrasing × model accuracy (6 phrasings, best first)" in page
    results = PhrasingResult.objects.filter(task=task)
    best = max(results, key=lambda r: r.accuracy)
    assert best.revision.template[:40] in page
    worst = client.get(url, {"order": "worst", "part": "grid"}, HTTP_HX_REQUEST="true").content.decode()
    assert 'id="grid"' in worst and "worst first" in worst
    csv_rows = list(csv.DictReader(io.StringIO(client.get(url, {"format": "csv"}).content.decode())))
    assert {r["model"] for r in csv_rows} == {"tiny-t5", "tiny-gpt2"}


def test_csv_cells_that_look_like_formulas_are_defused():
    from evaluation.leaderboards.exports import safe_cell

    assert safe_cell('=HYPERLINK("http://x")') == '\'=HYPERLINK("http://x")'
    assert safe_cell("-1+2") == "'-1+2" and safe_cell(0.5) == 0.5 and safe_cell("plain") == "plain"


def test_the_phrasing_page_shows_every_model_and_paged_predictions(client, board):
    result = PhrasingResult.objects.filter(variant__model__name="tiny-t5").first()
    url = reverse("phrasing_detail", args=[result.revision.instruction_id])
    page = client.get(url).content.decode()
    assert "tiny-t5" in page and "tiny-gpt2" in page and "Options by log-likelihood" in page
    assert page.count('class="prompt"') == 1 + 4  # the phrasing, then one prompt per instance of the sample
    fragment = client.get(
        url, {"variant": result.variant_id, "page": 1}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert 'id="predictions"' in fragment and "<h1>" not in fragment


def test_the_phrasing_page_puts_an_accuracy_in_context_and_filters_wrong_answers(client, board):
    result = PhrasingResult.objects.filter(variant__model__name="tiny-t5", complete=True).first()
    others = PhrasingResult.objects.filter(variant=result.variant, task=result.task, complete=True)
    rank = 1 + sum(r.accuracy > result.accuracy for r in others)
    url = reverse("phrasing_detail", args=[result.revision.instruction_id])
    page = client.get(url, {"variant": result.variant_id}).content.decode()
    assert "Task median" in page and "Chance" in page and f"{rank} of {others.count()}" in page
    assert "[" in page.split("Accuracy on every model", 1)[1]  # an interval beside each accuracy
    wrong = client.get(url, {"variant": result.variant_id, "wrong": "1"}).content.decode()
    n_wrong = result.n_total - result.n_correct
    assert f"Wrong answers only: {n_wrong} instance" in wrong
    assert wrong.count('<span class="badge bad">wrong</span>') == min(n_wrong, 20)
    assert '<span class="badge ok">correct</span>' not in wrong


def test_the_model_page_breaks_results_down_by_task(client, board):
    page = client.get(reverse("model_detail", args=["tiny-t5"])).content.decode()
    assert page.count("/results/") >= 4


def test_the_model_list_counts_scored_cells_from_stored_counts(client, board, django_assert_max_num_queries):
    cells = Prediction.objects.filter(variant__model__name="tiny-t5").count()
    with django_assert_max_num_queries(8):
        page = client.get(reverse("model_list")).content.decode()
    row = page.split('href="/models/tiny-t5/"', 1)[1].split("</tr>", 1)[0]
    assert f'<td class="num">{cells}</td>' in row
