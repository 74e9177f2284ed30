"""Reads for pages and the API. Counts are computed in one query per list, never per row."""

from __future__ import annotations

import hashlib

from django.db.models import Avg, Count, F, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404

from collection.models import Benchmark, Instance, Instruction, Task


def _count(queryset: QuerySet, distinct: str | None = None) -> Coalesce:
    """A correlated COUNT subquery: one per column, so several counts never multiply each other's joins."""
    counted = (
        queryset.order_by()
        .annotate(_one=Value(1))
        .values("_one")
        .annotate(n=Count(distinct, distinct=True) if distinct else Count("*"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def benchmark_list() -> QuerySet[Benchmark]:
    """Benchmarks with their top-level task count, phrasings approved and pending, and models scored."""
    from evaluation.models import BenchmarkSummary

    phrasings = Instruction.objects.filter(task__benchmark=OuterRef("pk"))
    return Benchmark.objects.annotate(
        task_count=_count(Task.objects.filter(benchmark=OuterRef("pk"), parent__isnull=True)),
        approved_count=_count(phrasings.filter(status="approved")),
        pending_count=_count(phrasings.filter(status="pending")),
        model_count=_count(
            BenchmarkSummary.objects.filter(benchmark=OuterRef("pk"), phrasing_set="all"), "variant__model"
        ),
    ).order_by("name")


def benchmark_get(slug: str) -> Benchmark:
    return get_object_or_404(Benchmark, slug=slug)


TASK_ORDERS = {
    "name": ("slug",),
    "fewest": ("approved_count", "slug"),  # where new phrasings help most
    "pending": ("-pending_count", "slug"),
}


def task_list(
    benchmark: Benchmark, *, kind: str = "", query: str = "", order: str = "name"
) -> QuerySet[Task]:
    """Top-level tasks with their phrasing counts by status, subtasks and the models scored on them,
    filtered by kind and a search over name and description."""
    from evaluation.models import TaskSummary

    tasks = Task.objects.filter(benchmark=benchmark, parent__isnull=True)
    if kind:
        tasks = tasks.filter(kind=kind)
    if query:
        tasks = tasks.filter(Q(name__icontains=query) | Q(slug__icontains=query) | Q(description__icontains=query))
    phrasings = Instruction.objects.filter(task=OuterRef("pk"))
    return tasks.annotate(
        approved_count=_count(phrasings.filter(status="approved")),
        pending_count=_count(phrasings.filter(status="pending")),
        subtask_count=_count(Task.objects.filter(parent=OuterRef("pk"))),
        model_count=_count(TaskSummary.objects.filter(task=OuterRef("pk"), phrasing_set="all"), "variant__model"),
    ).order_by(*TASK_ORDERS.get(order, TASK_ORDERS["name"]))


def task_get(benchmark_slug: str, task_slug: str) -> Task:
    return get_object_or_404(Task.objects.select_related("benchmark", "parent"), benchmark__slug=benchmark_slug, slug=task_slug)


def task_eval_instances(task: Task) -> QuerySet[Instance]:
    """A task's evaluation instances: its own and those of its subtasks (MMLU subjects, BIG-bench subtasks)."""
    return Instance.objects.filter(Q(task=task) | Q(task__parent=task), split=Instance.Split.EVAL)


def task_eval_sample_ids(task: Task) -> list[int]:
    """The instances every phrasing of the task is scored on: all eval instances, or a fixed sample of N.

    An instance is in the sample when its hash (seed, task slug, source id) ranks among the N smallest, so the
    sample does not depend on database ids or insertion order, and adding instances moves it only a little."""
    rows = list(task_eval_instances(task).values_list("id", "task__slug", "source_id"))
    size = task.eval_sample_size
    if size is None or size >= len(rows):
        return sorted(row[0] for row in rows)

    def rank(row) -> str:
        return hashlib.sha256(f"{task.eval_sample_seed}:{row[1]}:{row[2]}".encode()).hexdigest()

    return sorted(row[0] for row in sorted(rows, key=rank)[:size])


def task_phrasing_scores(task: Task) -> dict[int, dict]:
    """Per approved phrasing of the task: mean accuracy of its current revision over the models scored on
    the task's whole sample, and how many models that is."""
    from evaluation.models import PhrasingResult

    rows = (
        PhrasingResult.objects.filter(
            task=task,
            complete=True,
            revision__instruction__status="approved",
            revision__instruction__current_revision=F("revision"),
        )
        .values("revision__instruction_id")
        .annotate(mean=Avg("accuracy"), models=Count("variant__model", distinct=True))
    )
    return {row["revision__instruction_id"]: row for row in rows}


def task_phrasings(task: Task, *, status: str = "approved") -> QuerySet[Instruction]:
    return (
        Instruction.objects.filter(task=task, status=status)
        .select_related("collection", "author", "current_revision")
        .order_by("collection__name", "id")
    )


def author_phrasings(user) -> QuerySet[Instruction]:
    return (
        Instruction.objects.filter(author=user)
        .select_related("task__benchmark", "current_revision", "reviewer")
        .order_by("-created_at", "-id")
    )


def review_queue(*, benchmark_slug: str = "") -> QuerySet[Instruction]:
    """Pending phrasings, oldest first: the order they were submitted is the fair order to review them."""
    pending = Instruction.objects.filter(status=Instruction.Status.PENDING).select_related(
        "task__benchmark", "current_revision", "author", "collection"
    )
    if benchmark_slug:
        pending = pending.filter(task__benchmark__slug=benchmark_slug)
    return pending.order_by("updated_at", "id")

