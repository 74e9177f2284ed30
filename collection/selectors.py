"""Reads for pages and the API. Counts are computed in one query per list, never per row."""

from __future__ import annotations

import hashlib

from django.db.models import Count, Q, QuerySet
from django.shortcuts import get_object_or_404

from collection.models import Benchmark, Instance, Instruction, Task


def benchmark_list() -> QuerySet[Benchmark]:
    return Benchmark.objects.annotate(
        task_count=Count("tasks", filter=Q(tasks__parent__isnull=True), distinct=True),
    ).order_by("name")


def benchmark_get(slug: str) -> Benchmark:
    return get_object_or_404(Benchmark, slug=slug)


def task_list(benchmark: Benchmark) -> QuerySet[Task]:
    """Top-level tasks with their phrasing counts by status and their eval instance count (own + subtasks)."""
    return (
        Task.objects.filter(benchmark=benchmark, parent__isnull=True)
        .annotate(
            approved_count=Count("instructions", filter=Q(instructions__status="approved"), distinct=True),
            pending_count=Count("instructions", filter=Q(instructions__status="pending"), distinct=True),
            subtask_count=Count("subtasks", distinct=True),
        )
        .order_by("slug")
    )


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


def task_phrasings(task: Task, *, status: str = "approved") -> QuerySet[Instruction]:
    return (
        Instruction.objects.filter(task=task, status=status)
        .select_related("collection", "author", "current_revision")
        .order_by("collection__name", "id")
    )
