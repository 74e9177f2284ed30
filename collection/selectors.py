"""Reads for pages and the API. Counts are computed in one query per list, never per row."""

from __future__ import annotations

import hashlib

from django.db.models import Count, F, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404

from collection.access import instructions_visible_to
from collection.models import Benchmark, Instance, Instruction, Task


def count_of(queryset: QuerySet, distinct: str | None = None) -> Coalesce:
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
    """Benchmarks with their top-level task count and phrasings approved and pending (evaluation's
    selectors add the models scored)."""
    phrasings = Instruction.objects.filter(task__benchmark=OuterRef("pk"))
    return Benchmark.objects.annotate(
        task_count=count_of(Task.objects.filter(benchmark=OuterRef("pk"), parent__isnull=True)),
        approved_count=count_of(phrasings.filter(status="approved")),
        pending_count=count_of(phrasings.filter(status="pending")),
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
    """Top-level tasks with their phrasing counts by status and subtasks, filtered by kind and a search over
    name and description (evaluation's selectors add the models scored)."""
    tasks = Task.objects.filter(benchmark=benchmark, parent__isnull=True)
    if kind:
        tasks = tasks.filter(kind=kind)
    if query:
        tasks = tasks.filter(
            Q(name__icontains=query) | Q(slug__icontains=query) | Q(description__icontains=query)
        )
    phrasings = Instruction.objects.filter(task=OuterRef("pk"))
    return tasks.annotate(
        approved_count=count_of(phrasings.filter(status="approved")),
        pending_count=count_of(phrasings.filter(status="pending")),
        subtask_count=count_of(Task.objects.filter(parent=OuterRef("pk"))),
    ).order_by(*TASK_ORDERS.get(order, TASK_ORDERS["name"]))


def task_get(benchmark_slug: str, task_slug: str) -> Task:
    return get_object_or_404(
        Task.objects.select_related("benchmark", "parent"), benchmark__slug=benchmark_slug, slug=task_slug
    )


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


def approved_phrasings(
    task: Task | None = None, *, scorable: bool = True, prompt_format: str | None = None
) -> QuerySet[Instruction]:
    """The approved phrasings (of one task, or all) with their current revision: the equivalence set every
    model is scored on. The one definition of "the approved phrasings of a task". `scorable=False` keeps
    those known only from published results (no text), which count in imported figures. `prompt_format`
    (a model's) keeps those written for it: every model's, plus those written for that format alone."""
    phrasings = Instruction.objects.filter(
        status=Instruction.Status.APPROVED, current_revision__isnull=False
    ).select_related("current_revision", "task", "collection")
    if scorable:
        phrasings = phrasings.filter(text_available=True)
    if prompt_format is not None:
        phrasings = phrasings.filter(prompt_format__in=written_for(prompt_format))
    return phrasings if task is None else phrasings.filter(task=task)


def written_for(model_prompt_format: str) -> list[str]:
    """The phrasing formats a model with this prompt format scores: any model's ("") and its own."""
    return [Instruction.Format.ANY, model_prompt_format]


def task_phrasings(task: Task, user, *, status: str = "approved") -> QuerySet[Instruction]:
    """The task's phrasings in one status, as far as `user` may see them (approved ones: everyone)."""
    return (
        instructions_visible_to(user)
        .filter(task=task, status=status)
        .select_related("collection", "author", "current_revision")
        .order_by("collection__name", "id")
    )


def author_phrasings(user) -> QuerySet[Instruction]:
    if not user.is_authenticated:
        return Instruction.objects.none()
    return (
        instructions_visible_to(user)
        .filter(author=user)
        .select_related("task__benchmark", "current_revision", "reviewer")
        .order_by("-created_at", "-id")
    )


def review_queue(user, *, benchmark_slug: str = "") -> QuerySet[Instruction]:
    """Pending phrasings, oldest first: the order they were submitted is the fair order to review them."""
    pending = (
        instructions_visible_to(user)
        .filter(status=Instruction.Status.PENDING)
        .select_related("task__benchmark", "current_revision", "author", "collection")
    )
    if benchmark_slug:
        pending = pending.filter(task__benchmark__slug=benchmark_slug)
    return pending.order_by("updated_at", "id")


def decided_on_another_text() -> QuerySet[Instruction]:
    """Phrasings that stand decided (approved, rejected, sent back, retired) on a text other than their current
    one: the decision named another revision, or, for decisions taken before they named it, the current
    revision was written after the decision. None should exist (services and a database constraint prevent
    them); `manage.py check_decisions` lists any that an older version let through."""
    named = Q(reviewed_revision__isnull=False) & ~Q(reviewed_revision=F("current_revision"))
    older = Q(
        reviewed_revision__isnull=True,
        reviewed_at__isnull=False,
        current_revision__created_at__gt=F("reviewed_at"),
    )
    return (
        Instruction.objects.exclude(status=Instruction.Status.PENDING)
        .filter(current_revision__isnull=False)
        .filter(named | older)
        .select_related("task__benchmark", "current_revision", "reviewed_revision", "reviewer")
        .order_by("id")
    )
