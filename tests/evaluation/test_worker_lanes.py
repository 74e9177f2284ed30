"""Two lanes in a real Celery worker against Redis and PostgreSQL: while a bulk run of 50,000 cells is in
progress, a newly approved phrasing's run completes before the bulk run's next chunk, and the status page
reads the busy worker as busy (it cannot answer a ping) and says what it is doing.

Order is asserted, not time: prediction ids come from one sequence, so the approval's predictions and the
bulk run's chunks can be put in the order they were stored."""

from __future__ import annotations

import os

import pytest
import redis
from django.db.models import Max

from collection import services
from collection.demo import load_demo
from collection.models import Benchmark, Collection, Instance, Task
from core import jobs, worker_status
from core.jobs import JobStatus
from evaluation.models import Prediction, RunTrigger, ScoringRun
from evaluation.runs import budget, registry, scoring
from tests.workers import manage, process_env, running_worker, wait_for

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True), pytest.mark.worker]

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
CHUNK = 40
INSTANCES, PHRASINGS = 2000, 25  # 50,000 cells


@pytest.fixture
def env(tmp_path):
    redis.Redis.from_url(REDIS_URL).flushdb()  # no jobs left over from earlier tests
    return process_env(
        CELERY_BROKER_URL=REDIS_URL,
        VAR_DIR=str(tmp_path),
        WORKER_DEVICE="cpu",
        SCORING_CHUNK_CELLS=str(CHUNK),
    )


def bulk_task() -> Task:
    """A task of 2,000 instances with 25 approved phrasings: 50,000 cells per model."""
    benchmark = Benchmark.objects.create(slug="bulk", name="Bulk")
    task = Task.objects.create(
        benchmark=benchmark,
        slug="parity",
        name="Parity",
        kind="binary",
        answer_format="option_text",
        input_fields=["number"],
        label_space=["yes", "no"],
        max_options=2,
    )
    Instance.objects.bulk_create(
        Instance(task=task, source_id=str(n), inputs={"number": str(n)}, options=["yes", "no"], gold=n % 2)
        for n in range(INSTANCES)
    )
    crowd = Collection.objects.get(slug="crowd")
    for k in range(PHRASINGS):
        services.instruction_create(
            task=task,
            template=f"Question {k}: is {{number}} an even number?",
            collection=crowd,
            source="test",
            status="approved",
        )
    return task


def test_an_approved_phrasing_is_scored_before_the_next_chunk_of_a_bulk_run(
    env, tiny_models, tmp_path, alice, carol
):
    load_demo(generated_per_task=0)  # the six hand-written phrasings per task
    demo_task = Task.objects.filter(benchmark__slug="demo", parent=None).order_by("id").first()
    Task.objects.filter(benchmark__slug="demo").update(eval_sample_size=10)
    task = bulk_task()
    model = registry.language_model_register(
        name="tiny-t5", source=str(tiny_models["t5"]), family="seq2seq", batch_size=8, score=False
    )
    variant = scoring.base_variant(model)

    # Bulk work over the budget (the big task and the demo's four: five runs) is planned; nothing is sent.
    planned = scoring.scoring_runs_for_variant(variant=variant, trigger=RunTrigger.MANUAL, planned=True)
    runs = budget.bulk_submit(runs=planned, trigger=RunTrigger.MANUAL)
    (big,) = [run for run in runs if run.task_id == task.id]
    assert len(runs) == 5 and big.total_cells == INSTANCES * PHRASINGS >= 50_000
    assert {(run.status, run.lane) for run in runs} == {(JobStatus.PLANNED, ScoringRun.Lane.BULK)}
    assert len({run.plan_id for run in runs}) == 1 and big.plan_id is not None
    assert redis.Redis.from_url(REDIS_URL).llen("gpu-bulk") == 0
    bulk_cells = Prediction.objects.filter(run__plan_id=big.plan_id)

    log = tmp_path / "worker.log"
    with running_worker(env, queues="gpu,default,gpu-bulk", log=log):
        wait_for(lambda: worker_status.worker_states(), timeout=60, what="the worker's first beat", log=log)
        # An admin starts it (from another process: in this one Celery runs tasks inline).
        assert "started: 5 run(s)" in manage(env, "score", "--start-planned", str(big.plan_id))

        def big_done() -> int:
            big.refresh_from_db()
            return big.done_cells

        wait_for(lambda: big_done() >= CHUNK, timeout=120, what="the big run to start", log=log)

        # The status page: the worker is busy with bulk work, not missing.
        def busy_with_bulk() -> bool:
            (state,) = worker_status.worker_states()
            return state.state == "busy" and {job.plan_id for job in state.doing} == {big.plan_id}

        wait_for(busy_with_bulk, timeout=30, what="the worker to show as busy with bulk work", log=log)

        # An author's phrasing is approved while the 50,000-cell run is in progress.
        phrasing = services.instruction_create(
            task=demo_task,
            template=f"Here is something to look at: {{{demo_task.input_fields[0]}}}\nWhat is the answer?",
            collection=Collection.objects.get(slug="crowd"),
            author=alice,
        )
        manage(
            env,
            "shell",
            "--no-imports",
            "-c",
            "from collection import services; from collection.models import Instruction; "
            "from django.contrib.auth.models import User; "
            f"services.instruction_review(instruction=Instruction.objects.get(id={phrasing.id}), "
            "reviewer=User.objects.get(username='carol'), status='approved')",
        )
        (interactive,) = ScoringRun.objects.filter(instruction=phrasing)
        assert interactive.lane == ScoringRun.Lane.INTERACTIVE
        assert big.status in (JobStatus.QUEUED, JobStatus.RUNNING) and 0 < big.done_cells < big.total_cells

        def interactive_finished() -> bool:
            interactive.refresh_from_db()
            return interactive.status in (JobStatus.SUCCEEDED, JobStatus.FAILED)

        wait_for(interactive_finished, timeout=120, what="the approval's run", log=log)
        # And the bulk work carries on after it.
        after = big_done()
        wait_for(lambda: big_done() >= after + CHUNK, timeout=120, what="the big run to go on", log=log)
        for run in ScoringRun.objects.filter(plan_id=big.plan_id, status__in=ScoringRun.ACTIVE):
            jobs.cancel(run)

    assert interactive.status == JobStatus.SUCCEEDED, interactive.error
    assert interactive.done_cells == interactive.total_cells == 10
    # `sent_at` is written once the broker holds the approval's job. From then until its last prediction,
    # the worker may only finish the bulk chunk it was on: at most one chunk of bulk cells in between.
    last_interactive = Prediction.objects.filter(run=interactive).aggregate(last=Max("id"))["last"]
    between = bulk_cells.filter(created_at__gt=interactive.sent_at, id__lt=last_interactive).count()
    assert between <= CHUNK, (between, CHUNK)
    assert bulk_cells.filter(id__gt=last_interactive).count() >= CHUNK
    big.refresh_from_db()
    assert big.chunks >= 2 and big.cells_per_second > 0
    assert big.attempts <= 1  # chunks are not new attempts (0 while it waits between two)
