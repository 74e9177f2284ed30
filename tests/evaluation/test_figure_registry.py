"""The figure registry: one declaration per figure serves the point value, the bootstrap, the posterior draws,
the pages, the API, the exports and the comparison; stored replicates carry their figures' names, so
summaries stored before a figure was added are recomputed rather than misread."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.core.management import call_command
from django.urls import reverse

from collection.demo import load_demo
from collection.models import Collection, Instance, Task
from collection.selectors import task_eval_sample_ids
from evaluation.leaderboards import adaptive_estimates
from evaluation.leaderboards.aggregates import aggregates_refresh_many
from evaluation.models import BenchmarkSummary, LanguageModel, Prediction, TaskSummary
from evaluation.runs import scoring
from evaluation.stats import estimation, figure_registry, metrics, paired_comparison, replicates

# The demo figure: what adding a figure takes is this declaration (and this test).
IQR = figure_registry.Figure(
    "iqr",
    "IQR",
    "pp",
    "Inter-quartile range of per-phrasing accuracy (Q75 - Q25), in points.",
    spread=True,
    formula=lambda d, done: np.percentile(d.accuracy, 75, axis=1) - np.percentile(d.accuracy, 25, axis=1),
)


@pytest.fixture
def with_iqr(monkeypatch):
    monkeypatch.setattr(figure_registry, "FIGURES", (*figure_registry.FIGURES, IQR))


@pytest.fixture
def scored(db):
    """A model (never loaded) with hand-written predictions on every approved demo phrasing, summarised
    under the registry as it is: two-way bootstrap replicates stored for every task."""
    load_demo(generated_per_task=0)
    Task.objects.filter(benchmark__slug="demo").update(eval_sample_size=8)
    model = LanguageModel.objects.create(name="synthetic", source="/nowhere", family="seq2seq")
    model.tuned_on.set([Collection.objects.get(slug="demotune")])
    variant = scoring.base_variant(model)
    rng = np.random.default_rng(0)
    rows, tasks = [], set()
    for revision in scoring.approved_revisions(model=model):
        task = revision.instruction.task
        tasks.add(task.id)
        skill = rng.uniform(0.3, 0.9)
        for instance in Instance.objects.filter(id__in=task_eval_sample_ids(task)):
            right = bool(rng.random() < skill)
            predicted = instance.gold if right else (instance.gold + 1) % len(instance.options)
            width = len(instance.options)
            rows.append(
                Prediction(
                    variant=variant,
                    revision=revision,
                    instance=instance,
                    logliks=[0.0] * width,
                    lengths=[1] * width,
                    predicted=predicted,
                    correct=right,
                )
            )
    Prediction.objects.bulk_create(rows)
    aggregates_refresh_many({(variant.id, task_id) for task_id in tasks})
    return variant


def test_docs_figures_md_is_generated_from_the_registry():
    docs = Path(settings.BASE_DIR) / "docs" / "figures.md"
    assert docs.read_text(encoding="utf-8") == figure_registry.markdown(), (
        "run manage.py refresh_figures --docs"
    )
    for figure in figure_registry.FIGURES:
        assert f"| `{figure.name}` | {figure.label} |" in docs.read_text(encoding="utf-8")


def test_stored_replicates_carry_their_names_and_a_mismatch_reads_as_stale(with_iqr):
    names = figure_registry.names()
    draws = {name: np.linspace(0, 1, 7) + i for i, name in enumerate(names)}
    blob = replicates.pack(draws)
    assert replicates.stored_names(blob) == names and replicates.is_current(blob)
    unpacked = replicates.unpack(blob)
    assert list(unpacked) == list(names)
    assert all(np.allclose(unpacked[name], draws[name]) for name in names)
    # A blob of the fifteen figures before IQR, with names or (as stored before names were) without.
    before = [name for name in names if name != "iqr"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            figure_registry, "FIGURES", tuple(f for f in figure_registry.FIGURES if f.name != "iqr")
        )
        older = replicates.pack({name: draws[name] for name in before})
    legacy = np.stack([np.asarray(draws[name], dtype=np.float32) for name in before]).tobytes()
    # The same names under the earlier MAGIC: replicates drawn with task ids as seeds, which would not pair
    # draw for draw with the slug-seeded ones.
    id_seeded = b"\xffFIG" + blob[len(replicates.MAGIC) :]
    for stale in (older, legacy, memoryview(legacy), id_seeded):
        assert not replicates.is_current(stale) and replicates.unpack(stale) is None
    assert replicates.stored_names(legacy) is None and not replicates.is_current(None)
    with pytest.raises(ValueError, match="must name exactly"):
        replicates.pack({name: draws[name] for name in before})


def test_a_declared_figure_has_a_point_value_bootstrap_replicates_posterior_draws_and_a_comparison(with_iqr):
    rng = np.random.default_rng(3)
    correct = rng.random((6, 40)) < 0.6
    observed = [True, True, True, False, False, False]
    accuracy = correct.mean(axis=1)
    iqr = np.percentile(accuracy, 75) - np.percentile(accuracy, 25)
    summary = metrics.summarise(correct=correct, observed=observed, samples=200)
    assert summary.iqr == pytest.approx(iqr) and summary.as_dict()["iqr"] == summary.iqr
    low, high = summary.ci["iqr"]
    assert low <= summary.iqr <= high
    assert metrics.spread_figures(accuracy)["iqr"] == pytest.approx(iqr)
    few = metrics.summarise(correct=correct[:2], observed=observed[:2], samples=50)
    assert few.iqr is None  # a spread figure: n/a below the minimum of phrasings
    bench = metrics.benchmark_summary([metrics.TaskData(observed, correct=correct)], samples=100)
    assert bench["iqr"] == pytest.approx(iqr) and "iqr" in bench["ci"]
    # The estimator's posterior draws (a full matrix: exactly the point value) and its Q90 beside them.
    cells = np.column_stack([*np.nonzero(np.ones_like(correct)), correct.ravel()])
    fitted = estimation.estimate_spread(cells, correct.shape)
    assert fitted.figures["iqr"] == pytest.approx(iqr) and "q90" in fitted.figures
    matrix = adaptive_estimates.Matrix(list(range(6)), list(range(40)), np.ones_like(correct), correct)
    draws = adaptive_estimates.TaskEstimate([], matrix, fitted).figure_draws(
        np.arange(6), observed, [not o for o in observed]
    )
    assert draws["iqr"] == pytest.approx([iqr])
    # A comparison reports it, with a paired interval.
    other = metrics.TaskData(observed, correct=rng.random((6, 40)) < 0.5)
    paired = paired_comparison.compare([(metrics.TaskData(observed, correct=correct), other)], samples=100)
    assert "iqr" in paired.overall and paired.overall["iqr"].ci is not None


def test_an_added_figure_shows_everywhere_once_the_stale_summaries_are_recomputed(
    client, scored, monkeypatch
):
    before = {s.id: s.figures for s in TaskSummary.objects.filter(variant=scored)}
    monkeypatch.setattr(figure_registry, "FIGURES", (*figure_registry.FIGURES, IQR))
    # Stored under the registry without IQR: stale, never read as if it held IQR.
    stored = list(TaskSummary.with_replicates.filter(variant=scored, replicates__isnull=False))
    assert stored and not any(replicates.is_current(s.replicates) for s in stored)
    assert all(replicates.unpack(s.replicates) is None for s in stored)

    call_command("refresh_figures", stdout=io.StringIO())

    summaries = list(TaskSummary.with_replicates.filter(variant=scored))
    assert all(replicates.is_current(s.replicates) for s in summaries if s.replicates is not None)
    for summary in summaries:
        figures = summary.figures
        # Nothing else moved, intervals included; IQR is the quartiles' difference.
        ci = {k: v for k, v in figures["ci"].items() if k != "iqr"}
        assert {k: v for k, v in figures.items() if k != "iqr"} | {"ci": ci} == before[summary.id]
        if figures["iqr"] is not None:
            assert figures["iqr"] == pytest.approx(figures["q75"] - figures["q25"])
    row = BenchmarkSummary.objects.get(variant=scored, phrasing_set="all", task_kind="")
    assert row.figures["iqr"] is not None and "iqr" in row.figures["ci"]
    shown = f"{100 * row.figures['iqr']:.1f}"

    url = reverse("leaderboard", args=["demo"])
    page = client.get(url, {"figures": "all"}).content.decode()
    assert f'title="{IQR.definition}"' in page and ">IQR" in page and shown in page
    assert "Std, Spread, Gap and IQR in percentage points" in page  # the units, in "How to read this"
    task = Task.objects.filter(benchmark__slug="demo").order_by("slug").first()
    task_page = client.get(
        reverse("task_results", args=["demo", task.slug]), {"figures": "all"}
    ).content.decode()
    task_iqr = TaskSummary.objects.get(variant=scored, task=task, phrasing_set="all").figures["iqr"]
    assert ">IQR" in task_page and f"{100 * task_iqr:.1f}" in task_page
    body = client.get("/api/leaderboard/", {"benchmark": "demo"}).json()
    assert body["results"][0]["iqr"] == pytest.approx(row.figures["iqr"])
    assert {
        "name": "iqr",
        "label": "IQR",
        "unit": "pp",
        "definition": IQR.definition,
        "spread": True,
    } in body["figures"]
    exported = list(csv.DictReader(io.StringIO(client.get(url, {"format": "csv"}).content.decode())))
    assert float(exported[0]["iqr"]) == pytest.approx(row.figures["iqr"]) and "iqr_ci_low" in exported[0]
    records = json.loads(client.get(url, {"format": "json"}).content)
    assert records[0]["iqr"] == pytest.approx(row.figures["iqr"])
    # Sortable like any other column.
    assert client.get(url, {"figures": "all", "sort": "iqr"}).status_code == 200


def test_replicates_stored_under_the_task_id_seed_are_recomputed_and_the_benchmark_rows_with_them(scored):
    """An upgrade from the id-seeded bootstrap: blobs under the earlier MAGIC and benchmark rows averaged from
    them are stale; refresh_figures recomputes both, to what a fresh build stores."""
    current = {
        (s.phrasing_set, s.task_kind): s.figures for s in BenchmarkSummary.objects.filter(variant=scored)
    }
    stored = list(TaskSummary.with_replicates.filter(variant=scored, replicates__isnull=False))
    assert stored
    for summary in stored:
        summary.replicates = b"\xffFIG" + bytes(summary.replicates)[len(replicates.MAGIC) :]
        summary.save(update_fields=["replicates"])
    BenchmarkSummary.objects.filter(variant=scored).update(figures={"stale": True})

    call_command("refresh_figures", stdout=io.StringIO())

    summaries = TaskSummary.with_replicates.filter(variant=scored, replicates__isnull=False)
    assert all(replicates.is_current(s.replicates) for s in summaries)
    assert {
        (s.phrasing_set, s.task_kind): s.figures for s in BenchmarkSummary.objects.filter(variant=scored)
    } == current
