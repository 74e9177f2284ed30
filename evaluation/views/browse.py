"""Browsing: benchmarks, their tasks with counts and filters, and a task with its instances and phrasings,
with the models scored on them, their most fragile instances, and one instance under every phrasing."""

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from collection import selectors, templating
from collection.models import TaskKind
from core import roles
from core.parsing import parse_id
from evaluation.leaderboards import fragile
from evaluation.leaderboards import selectors as results

# The most variants whose fragile instances a task page lists at once (each reads the task's predictions once,
# then comes from the cache until the task's figures change).
FRAGILE_VARIANTS = 3
# Approved phrasings per page of a task: the demo's tasks have 70 each (bin/run), which made a page of
# 17,000 pixels, every card rendered on the first sample.
TASK_PHRASINGS_PER_PAGE = 25


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
    page = Paginator(selectors.task_phrasings(task, request.user), TASK_PHRASINGS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    phrasings = list(page)
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
            "page": page,
            # The other parameters (the fragile section's variants) kept by the page links.
            "page_query": _without(request, "page"),
            "subtasks": task.subtasks.order_by("slug"),
            "can_submit": roles.can_submit(request.user) and bool(task.input_fields),
            "pending_count": task.instructions.filter(status="pending").count(),
            **_fragile_context(request, task),
        },
    )


def _without(request: HttpRequest, name: str) -> str:
    """The request's query string without the parameter `name`, to put in front of a new value of it."""
    query = request.GET.copy()
    query.pop(name, None)
    return query.urlencode()


def _chosen_variants(request: HttpRequest, variants: list) -> list:
    """The variants named by ?variant= (ids; anything else is ignored), at most FRAGILE_VARIANTS; the first
    variant when none is named."""
    wanted = {parse_id(value) for value in request.GET.getlist("variant")}
    chosen = [v for v in variants if v.id in wanted][:FRAGILE_VARIANTS]
    return chosen or variants[:1]


def _fragile_context(request: HttpRequest, task) -> dict:
    variants = fragile.scored_variants(task)
    chosen = _chosen_variants(request, variants)
    version = results.task_version(task) if chosen else None
    return {
        "fragile_variants": variants,
        "fragile_chosen": [v.id for v in chosen],
        "fragile_lists": [(v, fragile.fragile_instances(v, task, version=version)) for v in chosen],
        "fragile_max": FRAGILE_VARIANTS,
    }


def task_instance(
    request: HttpRequest, benchmark_slug: str, task_slug: str, instance_id: int
) -> HttpResponse:
    """One evaluation instance of the task under every approved phrasing, for one model variant (?variant=):
    each phrasing's prompt, its answer and each option's log-likelihood."""
    task = selectors.task_get(benchmark_slug, task_slug)
    instance = selectors.task_eval_instances(task).filter(id=instance_id).first()
    if instance is None:
        raise Http404("No such instance in this task.")
    variants = fragile.scored_variants(task)
    variant = _chosen_variants(request, variants)[:1]
    answers = fragile.instance_answers(variant[0], task, instance) if variant else []
    return render(
        request,
        "collection/task_instance.html",
        {
            "task": task,
            "instance": instance,
            "variants": variants,
            "variant": variant[0] if variant else None,
            "answers": answers,
            "right": sum(a.correct for a in answers),
            "distinct": len({a.predicted for a in answers}),
        },
    )
