from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from collection import selectors, templating


def benchmark_list(request: HttpRequest) -> HttpResponse:
    return render(request, "collection/benchmark_list.html", {"benchmarks": selectors.benchmark_list()})


def benchmark_detail(request: HttpRequest, slug: str) -> HttpResponse:
    benchmark = selectors.benchmark_get(slug)
    return render(
        request,
        "collection/benchmark_detail.html",
        {"benchmark": benchmark, "tasks": selectors.task_list(benchmark)},
    )


def task_detail(request: HttpRequest, benchmark_slug: str, task_slug: str) -> HttpResponse:
    task = selectors.task_get(benchmark_slug, task_slug)
    instances = selectors.task_eval_instances(task)
    samples = list(instances.order_by("id")[:3])
    phrasings = list(selectors.task_phrasings(task))
    # Each phrasing shown on the first sample, exactly as a model would receive it (before its wrapper).
    for phrasing in phrasings:
        try:
            phrasing.preview = templating.render(phrasing.template, samples[0].inputs, samples[0].options) if samples else ""
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
        },
    )
