"""Browsing: benchmarks, their tasks with counts and filters, and a task with its instances and phrasings,
with the models scored on them."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from collection import selectors, templating
from collection.models import TaskKind
from core import roles
from evaluation.leaderboards import selectors as results


def benchmark_list(request: HttpRequest) -> HttpResponse:
    benchmarks = list(results.benchmark_list())
    for benchmark in benchmarks:  # the answer without a click: who leads each board
        benchmark.leaders = results.leaders(benchmark) if benchmark.model_count else []
    return render(request, "collection/benchmark_list.html", {"benchmarks": benchmarks})


def benchmark_detail(request: HttpRequest, slug: str) -> HttpResponse:
    benchmark = selectors.benchmark_get(slug)
    filters = {
        "kind": request.GET.get("kind", "") if request.GET.get("kind") in TaskKind.values else "",
        "query": request.GET.get("q", "").strip()[:100],
        "order": request.GET.get("order", "name")
        if request.GET.get("order") in selectors.TASK_ORDERS
        else "name",
    }
    context = {
        "benchmark": benchmark,
        "leaders": [] if request.htmx else results.leaders(benchmark),
        "tasks": results.task_list(benchmark, **filters),
        "filters": filters,
        "kinds": TaskKind.choices,
    }
    template = (
        "collection/benchmark_detail.html#tasks" if request.htmx else "collection/benchmark_detail.html"
    )
    return render(request, template, context)


def task_detail(request: HttpRequest, benchmark_slug: str, task_slug: str) -> HttpResponse:
    task = selectors.task_get(benchmark_slug, task_slug)
    instances = selectors.task_eval_instances(task)
    samples = list(instances.order_by("id")[:3])
    phrasings = list(selectors.task_phrasings(task, request.user))
    scores = results.task_phrasing_scores(task)
    # Each phrasing shown on the first sample, exactly as a model would receive it (before its wrapper).
    for phrasing in phrasings:
        phrasing.score = scores.get(phrasing.id)
        try:
            phrasing.preview = (
                templating.render(phrasing.template, samples[0].inputs, samples[0].options) if samples else ""
            )
        except templating.TemplateError as exc:
            phrasing.preview = f"(cannot render: {exc})"
    return render(
        request,
        "collection/task_detail.html",
        {
            "task": task,
            "instance_count": instances.count(),
            "samples": samples,
            "phrasings": phrasings,
            "subtasks": task.subtasks.order_by("slug"),
            "can_submit": roles.can_submit(request.user) and bool(task.input_fields),
            "pending_count": task.instructions.filter(status="pending").count(),
        },
    )
