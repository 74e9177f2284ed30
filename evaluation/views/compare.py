"""The paired comparison page: two model variants on the cells they share, every figure's difference with
its paired interval, overall and per task."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from collection.models import Benchmark
from core.parsing import parse_id
from evaluation.leaderboards import comparisons, selectors
from evaluation.models import PhrasingSet


def compare(request: HttpRequest, slug: str) -> HttpResponse:
    benchmark = get_object_or_404(Benchmark, slug=slug)
    variants = comparisons.comparable_variants(benchmark)
    by_id = {v.id: v for v in variants}
    phrasing_set = request.GET.get("set", PhrasingSet.ALL)
    context = {
        "benchmark": benchmark,
        "variants": variants,
        "sets": [
            (value, label) for value, label in PhrasingSet.choices if value in comparisons.COMPARABLE_SETS
        ],
        "phrasing_set": phrasing_set,
        "columns": selectors.figure_columns(every=True),  # the figures a comparison reports
        "a_id": request.GET.get("a", ""),
        "b_id": request.GET.get("b", ""),
    }
    status = 200
    if "a" in request.GET or "b" in request.GET:
        a, b = by_id.get(parse_id(request.GET.get("a"))), by_id.get(parse_id(request.GET.get("b")))
        if a is None or b is None:
            context["error"] = f"Choose two models with results on {benchmark.name}."
            status = 400
        else:
            try:
                context["paired"] = comparisons.compare_variants(
                    benchmark=benchmark,
                    a=a,
                    b=b,
                    phrasing_set=phrasing_set,
                    version=selectors.leaderboard_version(benchmark),
                )
            except comparisons.NotComparable as exc:
                context["error"] = str(exc)
                status = 400
    return render(request, "evaluation/compare.html", context, status=status)
