"""Per-phrasing results and summaries follow the predictions: computed as runs finish, equal to the metrics
computed from the predictions directly, and updated when a phrasing leaves the approved set."""

from __future__ import annotations

import numpy as np
import pytest

from collection import services as collection_services
from collection.demo import load_demo
from collection.models import Collection, Instruction, Task
from evaluation.models import BenchmarkSummary, PhrasingResult, Prediction, ScoringRun, TaskSummary
from evaluation.runs import registry, scoring
from evaluation.stats import metrics

SAMPLE = 6


@pytest.fixture
def scored(db, tiny_models, django_capture_on_commit_callbacks):
    load_demo()
    Task.objects.filter(benchmark__slug="demo").update(eval_sample_size=SAMPLE)
    with django_capture_on_commit_callbacks(execute=True):
        model = registry.language_model_register(
            name="tiny-t5",
            source=str(tiny_models["t5"]),
            family="seq2seq",
            tuned_on=[Collection.objects.get(slug="demotune")],
        )
    return scoring.base_variant(model)


def test_results_and_summaries_are_kept_for_every_task_and_phrasing_set(scored):
    assert PhrasingResult.objects.filter(variant=scored).count() == 24
    assert all(r.complete and r.n_total == SAMPLE for r in PhrasingResult.objects.all())
    basic = TaskSummary.objects.filter(variant=scored, phrasing_set__in=["all", "observed", "unobserved"])
    assert basic.count() == 4 * 3
    # Held-out sets exist for the tasks that have held-out (and held-out unobserved) phrasings.
    from collection.models import Instruction
    from evaluation.split import is_heldout

    expected = 0
    for task_id in {i.task_id for i in Instruction.objects.filter(status="approved")}:
        phrasings = Instruction.objects.filter(task_id=task_id, status="approved").select_related(
            "collection"
        )
        held = [i for i in phrasings if is_heldout(i.stable_key)]
        expected += bool(held) + bool([i for i in held if i.collection.slug != "demotune"])
    assert TaskSummary.objects.filter(variant=scored, phrasing_set__startswith="heldout").count() == expected
    kinds = set(Task.objects.filter(benchmark__slug="demo").values_list("kind", flat=True))
    basic = BenchmarkSummary.objects.filter(
        variant=scored, phrasing_set__in=["all", "observed", "unobserved"]
    )
    assert basic.count() == (1 + len(kinds)) * 3


def test_task_figures_equal_the_metrics_of_the_predictions(scored):
    task = Task.objects.get(benchmark__slug="demo", slug="parity")
    revisions = sorted(PhrasingResult.objects.filter(task=task).values_list("revision_id", flat=True))
    instances = sorted(
        set(Prediction.objects.filter(revision_id__in=revisions).values_list("instance_id", flat=True))
    )
    correct = np.zeros((len(revisions), len(instances)), dtype=bool)
    for rev, inst, right in Prediction.objects.filter(revision_id__in=revisions).values_list(
        "revision_id", "instance_id", "correct"
    ):
        correct[revisions.index(rev), instances.index(inst)] = right
    demotune = Collection.objects.get(slug="demotune").id
    observed = [Instruction.objects.get(current_revision_id=r).collection_id == demotune for r in revisions]
    want = metrics.summarise(correct=correct, observed=observed)
    got = TaskSummary.objects.get(task=task, phrasing_set="all").figures
    for name in ("avgp", "std", "min", "q10", "median", "maxp", "spread", "cps", "consistency", "gap", "pdr"):
        assert got[name] == pytest.approx(getattr(want, name)), name
    assert got["ci_method"] == "instances and phrasings" and sum(observed) == 3


def test_retiring_a_phrasing_takes_it_out_of_the_figures(scored, carol, django_capture_on_commit_callbacks):
    task = Task.objects.get(benchmark__slug="demo", slug="parity")
    instruction = Instruction.objects.filter(task=task, status="approved").first()
    with django_capture_on_commit_callbacks(execute=True):
        collection_services.instruction_review(instruction=instruction, reviewer=carol, status="retired")
    assert not PhrasingResult.objects.filter(revision=instruction.current_revision).exists()
    assert TaskSummary.objects.get(task=task, phrasing_set="all").figures["phrasings"] == 5


def test_a_reinstated_phrasing_comes_back_into_the_figures(scored, carol, django_capture_on_commit_callbacks):
    """Reinstating needs no run (its predictions were kept), so its figures must be refreshed all the same."""
    task = Task.objects.get(benchmark__slug="demo", slug="parity")
    instruction = Instruction.objects.filter(task=task, status="approved").first()
    before = TaskSummary.objects.get(task=task, phrasing_set="all").figures
    for status in ("retired", "approved"):
        with django_capture_on_commit_callbacks(execute=True):
            collection_services.instruction_review(instruction=instruction, reviewer=carol, status=status)
    assert not ScoringRun.objects.filter(revisions=instruction.current_revision, trigger="approval").exists()
    assert PhrasingResult.objects.filter(revision=instruction.current_revision, variant=scored).exists()
    after = TaskSummary.objects.get(task=task, phrasing_set="all").figures
    assert after["phrasings"] == 6
    assert after["avgp"] == pytest.approx(before["avgp"]) and after["std"] == pytest.approx(before["std"])


def test_benchmark_rows_come_from_stored_task_replicates_equal_to_a_rebuild(scored):
    """A benchmark row is averaged from its tasks' stored replicates, reading no predictions, and equals
    the row rebuilt from every task's matrix with the same per-task draws."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from collection.models import Benchmark
    from evaluation.leaderboards import aggregates

    benchmark = Benchmark.objects.get(slug="demo")
    stored = BenchmarkSummary.objects.get(
        variant=scored, benchmark=benchmark, phrasing_set="all", task_kind=""
    )
    assert all(s.replicates for s in TaskSummary.objects.filter(variant=scored, task__parent__isnull=True))
    with CaptureQueriesContext(connection) as queries:
        aggregates.benchmark_summaries_refresh(variant=scored, benchmark=benchmark)
    assert not [q for q in queries.captured_queries if "evaluation_prediction" in q["sql"]]
    tasks = list(
        Task.objects.filter(benchmark=benchmark, parent__isnull=True, summaries__variant=scored).distinct()
    )
    data = [aggregates.task_data(scored, task) for task in tasks]
    rebuilt = metrics.benchmark_summary(
        data, keys=[metrics.task_key(t.slug) for t in tasks], samples=aggregates.BENCHMARK_BOOTSTRAP_SAMPLES
    )
    for name in ("avgp", "q10", "spread", "consistency", "gap"):
        assert stored.figures[name] == pytest.approx(rebuilt[name]), name
        # float32 storage: intervals agree to well under a hundredth of a point
        assert stored.figures["ci"][name] == pytest.approx(rebuilt["ci"][name], abs=1e-5), name


def test_a_summary_stored_before_replicates_is_recomputed_once(scored):
    from collection.models import Benchmark
    from evaluation.leaderboards import aggregates

    benchmark = Benchmark.objects.get(slug="demo")
    before = BenchmarkSummary.objects.get(
        variant=scored, benchmark=benchmark, phrasing_set="all", task_kind=""
    )
    TaskSummary.objects.filter(variant=scored).update(replicates=None)
    aggregates.benchmark_summaries_refresh(variant=scored, benchmark=benchmark)
    after = BenchmarkSummary.objects.get(id=before.id)
    assert after.figures["ci"] == before.figures["ci"]
    assert all(s.replicates for s in TaskSummary.objects.filter(variant=scored, task__parent__isnull=True))
