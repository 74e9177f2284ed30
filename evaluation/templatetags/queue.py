"""Queue positions and estimated times on run pages and "my phrasings" (evaluation/runs/queue.py), computed once
per request however many runs a page shows."""

from __future__ import annotations

from django import template

from evaluation.access import runs_visible_to
from evaluation.models import ScoringRun, named_variants
from evaluation.runs.queue import Estimate, queue_estimates

register = template.Library()

MAX_LINKED_RUNS = 10  # one per active model; a phrasing approved again later keeps its earlier runs too


def _estimates(context) -> dict[int, Estimate]:
    request = context.get("request")
    cached = getattr(request, "_queue_estimates", None)
    if cached is None:
        cached = queue_estimates()
        if request is not None:
            request._queue_estimates = cached
    return cached


@register.simple_tag(takes_context=True)
def run_estimate(context, run: ScoringRun) -> Estimate | None:
    """The run's place in the queue and its estimated start and finish; None unless queued or running."""
    return _estimates(context).get(run.id)


@register.simple_tag(takes_context=True)
def phrasing_estimate(context, instruction) -> Estimate | None:
    """For a phrasing being scored: the queue position of its first waiting run and when its last run
    should finish (None when that cannot be estimated yet)."""
    run_ids = ScoringRun.objects.filter(instruction=instruction, status__in=ScoringRun.ACTIVE).values_list(
        "id", flat=True
    )
    found = [e for e in (_estimates(context).get(i) for i in run_ids) if e is not None]
    if not found:
        return None
    positions = [e.position for e in found if e.position is not None]
    finishes = [e.finish for e in found]
    return Estimate(
        position=min(positions) if positions else None,
        start=min((e.start for e in found if e.start), default=None),
        finish=None if None in finishes else max(finishes),
    )


@register.simple_tag(takes_context=True)
def phrasing_runs(context, instruction) -> list[ScoringRun]:
    """The scoring runs of a phrasing that the viewer may see, newest first: the review queue links an
    approval to the runs it started."""
    user = context.get("request").user if context.get("request") else None
    return list(
        named_variants(runs_visible_to(user).filter(instruction=instruction)).order_by("-id")[
            :MAX_LINKED_RUNS
        ]
    )
