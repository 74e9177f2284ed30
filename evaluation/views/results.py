from __future__ import annotations

import hashlib

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from collection import services as collection_services
from collection import templating
from collection.access import can_tag, get_instruction_for_user, revisions_visible_to
from collection.answers import option_texts
from collection.forms import TagsForm
from collection.models import Benchmark, TaskKind
from collection.selectors import task_get
from core import jobs, roles
from core.errors import ApplicationError
from core.job_actions import job_page_action
from core.jobs import JobStatus
from core.page_cache import cached_page, page_version
from core.parsing import id_param, parse_id
from evaluation.access import get_model_for_user, get_run_for_user, softprompts_visible_to
from evaluation.leaderboards import (
    aggregates,
    common_ground,
    exports,
    format_variance,
    selectors,
    tag_effects,
)
from evaluation.models import PhrasingSet, SoftPrompt, VariantKind
from evaluation.robustness import softprompts
from evaluation.runs import budget, registry
from evaluation.stats import ranking

RUNS_PER_PAGE = 50
FRAGMENT_CACHE_SECONDS = 600


def model_list(request: HttpRequest) -> HttpResponse:
    return render(request, "evaluation/model_list.html", {"models": selectors.model_list(request.user)})


def model_detail(request: HttpRequest, name: str) -> HttpResponse:
    model = get_model_for_user(request.user, name)
    check = {"model": model, "checking": model.checks.filter(status__in=jobs.ACTIVE).exists()}
    if request.htmx:
        return render(request, "evaluation/model_detail.html#check", check)
    runs = selectors.run_list(request.user, model=model)[:RUNS_PER_PAGE]
    worst_first = request.GET.get("order") == "worst"
    breakdown = selectors.model_task_breakdown(model, worst_first=worst_first)
    worst_phrasings = selectors.model_worst_phrasings(model)
    tag_rows = tag_effects.model_tag_effects(model)
    base = model.variants.filter(kind=VariantKind.BASE).first()
    format_rows = format_variance.model_spreads(base) if base else []
    soft_prompts = softprompts_visible_to(request.user).filter(model=model)
    soft_prompts = soft_prompts.select_related("variant").defer(*SoftPrompt.HEAVY_FIELDS).order_by("-id")[:20]
    return render(
        request,
        "evaluation/model_detail.html",
        {
            **check,
            "runs": runs,
            "breakdown": breakdown,
            "worst_first": worst_first,
            "worst_phrasings": worst_phrasings,
            "tag_rows": tag_rows,
            "format_rows": format_rows,
            "min_per_group": tag_effects.MIN_PER_GROUP,
            "soft_prompts": soft_prompts,
            "align_methods": [(key, label) for key, (label, _) in softprompts.ALIGN_METHODS.items()],
            "calibrated": model.variants.filter(kind=VariantKind.CALIBRATED).first(),
        },
    )


@login_required
@require_POST
def model_check_retry(request: HttpRequest, name: str) -> HttpResponse:
    """Check the model again on a GPU worker: after a failure, or to store what an old model never stored."""
    model = get_model_for_user(request.user, name, manage=True)
    try:
        registry.language_model_check_retry(model=model, by=request.user)
        messages.success(request, f"{model.name} will be checked again by a GPU worker.")
    except ApplicationError as exc:
        messages.error(request, str(exc))
    return redirect("model_detail", name=model.name)


@login_required
@require_POST
def model_score(request: HttpRequest, name: str) -> HttpResponse:
    """Queue whatever approved phrasings the model has not scored yet."""
    model = get_model_for_user(request.user, name, manage=True)
    try:
        runs = registry.language_model_score_missing(model=model, by=request.user)
    except ApplicationError as exc:
        messages.error(request, str(exc))
        return redirect("model_detail", name=model.name)
    if runs:
        # Over the budget the runs are planned, not sent: the message links the plan (evaluation/runs/budget.py).
        messages.success(request, budget.bulk_summary(runs))
    else:
        messages.info(request, "Nothing to do: every approved phrasing is already scored on this model.")
    return redirect("model_detail", name=model.name)


def run_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status")
    runs = selectors.run_list(request.user, status=status)[:RUNS_PER_PAGE]
    return render(
        request, "evaluation/run_list.html", {"runs": runs, "status": status, "statuses": JobStatus.choices}
    )


def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    run = get_run_for_user(request.user, run_id)
    # A loader's error names the model's source; a path on our disks is for admins only.
    model = run.variant.model
    error = run.error if roles.is_admin(request.user) else model.without_source(run.error)
    if request.htmx:
        return render(request, "evaluation/run_detail.html#progress", {"run": run, "error": error})
    # A run of a task may have scored phrasings since retired: they are listed only to those who see them.
    revisions = (
        revisions_visible_to(request.user)
        .filter(scoring_runs=run)
        .select_related("instruction__task", "instruction__collection")
        .order_by("id")
    )
    return render(
        request,
        "evaluation/run_detail.html",
        {"run": run, "error": error, "revisions": revisions[:100], "revision_count": revisions.count()},
    )


@login_required
@require_POST
def run_cancel(request: HttpRequest, run_id: int) -> HttpResponse:
    return job_page_action(request, get_run_for_user(request.user, run_id, manage=True), "cancel")


@login_required
@require_POST
def run_retry(request: HttpRequest, run_id: int) -> HttpResponse:
    return job_page_action(request, get_run_for_user(request.user, run_id, manage=True), "retry")


# --- Leaderboards and results ------------------------------------------------------------------------------

SETS = PhrasingSet.choices


def _board_params(request: HttpRequest) -> dict:
    phrasing_set = request.GET.get("set", "all")
    sort = request.GET.get("sort", "avgp")
    return {
        "phrasing_set": phrasing_set if phrasing_set in dict(SETS) else "all",
        "sort": sort if sort in selectors.sort_keys() else "avgp",
        "descending": request.GET.get("dir", "desc") != "asc",
    }


def _columns(request: HttpRequest) -> dict:
    """The glance (model, coverage, AvgP, Spread, Q10, Gap) by default; every figure with ?figures=all."""
    every = request.GET.get("figures") == "all"
    return {
        "columns": selectors.figure_columns(every),
        "every_figure": every,
        "figures_query": "&figures=all" if every else "",
    }


def _export(request: HttpRequest, name: str, rows) -> HttpResponse | None:
    fmt = request.GET.get("format")
    if fmt not in ("csv", "json"):
        return None
    header, table, records = exports.figure_rows(rows)
    if fmt == "csv":
        return exports.csv_response(name, header, table)
    return exports.json_response(name, records)


def _observed_chart(rows) -> dict:
    """Grouped bars: observed vs unobserved AvgP per model variant (plotly.js figure JSON). No rows, no traces:
    the page then says there is nothing to chart (static/js/charts.js) rather than drawing empty axes."""
    if not rows:
        return {"data": [], "layout": {}}
    labels = [str(r.variant) for r in rows]

    def bars(key, name):
        return {
            "type": "bar",
            "name": name,
            "x": labels,
            "y": [None if r.figures.get(key) is None else round(100 * r.figures[key], 2) for r in rows],
        }

    return {
        "data": [bars("observed_avgp", "Observed"), bars("unobserved_avgp", "Unobserved")],
        "layout": {
            "barmode": "group",
            "yaxis": {"title": {"text": "AvgP (%)"}},
            "margin": {"t": 20, "b": 120},
            "height": 360,
        },
    }


def _box_chart(rows) -> dict:
    """One box per variant from its summary's quantiles: min, Q1, median, Q3, max of per-phrasing accuracy."""

    def pct(r, key):
        return round(100 * r.figures[key], 2)

    data = [
        {
            "type": "box",
            "name": str(r.variant),
            "q1": [pct(r, "q25")],
            "median": [pct(r, "median")],
            "q3": [pct(r, "q75")],
            "lowerfence": [pct(r, "min")],
            "upperfence": [pct(r, "maxp")],
            "mean": [pct(r, "avgp")],
            "x": [str(r.variant)],
            "boxpoints": False,
        }
        for r in rows
        if r.figures.get("q25") is not None
    ]
    return {
        "data": data,
        "layout": {
            "showlegend": False,
            "yaxis": {"title": {"text": "Per-phrasing accuracy (%)"}},
            "margin": {"t": 20, "b": 120},
            "height": 360,
        },
    }


def _cached_fragment(key_parts: list, version, build) -> str:
    """Render a data-heavy fragment once per data version: the key carries the newest summary's update time
    and the row count, so a refresh of the figures makes a new key and stale fragments simply expire."""
    key = "fragment:" + hashlib.sha256(repr([*key_parts, version]).encode()).hexdigest()
    html = cache.get(key)
    if html is None:
        html = build()
        cache.set(key, html, timeout=FRAGMENT_CACHE_SECONDS)
    return mark_safe(html)  # rendered by our templates, with autoescaping


def _ground_context(board: selectors.Leaderboard, show_partial: bool) -> dict:
    return {
        "rows": board.rows,
        "partial": board.partial,
        "estimated": board.estimated,
        "ground": board.ground,
        "show_partial": show_partial,
        "partial_query": "&partial=1" if show_partial else "",
        "min_phrasings": settings.SPREAD_MIN_PHRASINGS,
        "ranking_rule": ranking.RULE,
    }


@cached_page(lambda request, slug: selectors.leaderboard_version(slug))
def leaderboard(request: HttpRequest, slug: str) -> HttpResponse:
    benchmark = get_object_or_404(Benchmark, slug=slug)
    params = _board_params(request)
    kinds = selectors.benchmark_task_kinds(benchmark)
    kind = request.GET.get("kind", "")
    kind = kind if kind in kinds else ""
    show_partial = request.GET.get("partial") == "1"
    columns = _columns(request)
    if request.GET.get("format") in ("csv", "json"):
        board = selectors.leaderboard(benchmark=benchmark, task_kind=kind, **params)
        rows = board.rows + (board.partial if show_partial else []) + board.estimated
        return _export(request, f"leaderboard-{benchmark.slug}-{params['phrasing_set']}", rows)

    version = page_version(request, lambda: selectors.leaderboard_version(benchmark))

    def build() -> str:
        board = selectors.leaderboard(benchmark=benchmark, task_kind=kind, version=version, **params)
        published = [r.figures for r in (*board.rows, *board.partial, *board.estimated) if r.is_imported]
        context = {
            "benchmark": benchmark,
            **_ground_context(board, show_partial),
            **columns,
            "kind": kind,
            **params,
            # Which tasks the published rows average over, and the rule that says so (aggregates.TASKS_RULE).
            "published_tasks": common_ground.published_tasks(benchmark, published) if published else [],
            "tasks_rule": aggregates.TASKS_RULE,
            "observed_chart": _observed_chart(board.rows),
            "box_chart": _box_chart(board.rows),
            "without_set": selectors.models_without_set(benchmark, params["phrasing_set"], kind),
        }
        return render_to_string("evaluation/leaderboard.html#board", context)

    board = _cached_fragment(
        ["leaderboard", benchmark.id, kind, show_partial, columns["every_figure"], sorted(params.items())],
        version,
        build,
    )
    if request.htmx:
        return HttpResponse(board)
    context = {
        "benchmark": benchmark,
        "sets": SETS,
        "kind_choices": [(k, TaskKind(k).label if k in TaskKind.values else k) for k in kinds],
        "kind": kind,
        **params,
        **columns,
        "show_partial": show_partial,
        "board": board,
    }
    return render(request, "evaluation/leaderboard.html", context)


def _task_page_version(request: HttpRequest, benchmark_slug: str, task_slug: str):
    version = selectors.task_version((benchmark_slug, task_slug))
    if request.GET.get("part") == "formats":
        # The wording-vs-format section (loaded by the page after it shows) also follows the format cells.
        return (version, format_variance.version((benchmark_slug, task_slug)))
    return version


@cached_page(_task_page_version)
def task_results(request: HttpRequest, benchmark_slug: str, task_slug: str) -> HttpResponse:
    task = task_get(benchmark_slug, task_slug)
    if request.GET.get("part") == "formats":
        return HttpResponse(_format_section(task))
    params = _board_params(request)
    show_partial = request.GET.get("partial") == "1"
    columns = _columns(request)
    if request.GET.get("format") in ("csv", "json"):
        board = selectors.task_results(task=task, **params)
        rows = board.rows + (board.partial if show_partial else []) + board.estimated
        return _export(request, f"results-{task.benchmark.slug}-{task.slug}-{params['phrasing_set']}", rows)
    order = "worst" if request.GET.get("order") == "worst" else "best"
    # A page past either end is clamped by task_grid; one that is not a number is the first.
    page = parse_id(request.GET.get("page")) or 1
    version = page_version(request, lambda: selectors.task_version(task))

    def build_models() -> str:
        board = selectors.task_results(task=task, version=version, **params)
        context = {
            "task": task,
            **_ground_context(board, show_partial),
            **columns,
            **params,
            "box_chart": _box_chart(board.rows),
        }
        return render_to_string("evaluation/task_results.html#models", context)

    def build_grid() -> str:
        # The grid's Mean ranks phrasings over the models on the task's common ground ("all" phrasings).
        ranked = [row.variant for row in selectors.task_results(task=task, version=version).rows]
        grid = selectors.task_grid(
            task=task, variants=selectors.task_variants(task), page=page, order=order, ranked=ranked
        )
        return render_to_string(
            "evaluation/task_results.html#grid", {"task": task, "grid": grid, "order": order}
        )

    models = _cached_fragment(
        ["task-models", task.id, show_partial, columns["every_figure"], sorted(params.items())],
        version,
        build_models,
    )
    grid = _cached_fragment(["task-grid", task.id, order, page], version, build_grid)
    if request.htmx:
        return HttpResponse(grid if request.GET.get("part") == "grid" else models)
    context = {
        "task": task,
        "sets": SETS,
        **params,
        **columns,
        "show_partial": show_partial,
        "models": models,
        "grid": grid,
    }
    return render(request, "evaluation/task_results.html", context)


def _format_section(task) -> str:
    """The task page's wording-vs-format section: a fragment of its own, so the page's version (and its
    cached copy) need not follow the format cells, which only this section reads."""

    def build() -> str:
        spreads = [
            format_variance.page(variant, format_variance.cached_spread(variant, task))
            for variant in format_variance.variants_with_formats(task)
        ]
        context = {"task": task, "spreads": spreads, "min_wordings": format_variance.MIN_WORDINGS}
        return render_to_string("evaluation/_format_spread.html", context)

    version = (selectors.task_version(task), format_variance.version(task))
    return _cached_fragment(["task-formats", task.id], version, build)


PREDICTIONS_PER_PAGE = 20


def _phrasing_tags_save(request: HttpRequest, instruction) -> HttpResponse:
    if not can_tag(request.user, instruction):
        raise PermissionDenied("Only the phrasing's author or a curator can tag it.")
    form = TagsForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose tags from the list; nothing was changed.")
    else:
        try:
            collection_services.instruction_tag(
                instruction=instruction, tags=form.cleaned_data["tags"], by=request.user
            )
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, "Tags saved.")
    return redirect("phrasing_detail", instruction_id=instruction.id)


def phrasing_detail(request: HttpRequest, instruction_id: int) -> HttpResponse:
    """A phrasing's accuracy on every model, and one model's per-instance predictions with the prompt. Its
    author and curators change its tags here (a POST of the tags form)."""
    instruction = get_instruction_for_user(request.user, instruction_id)
    if request.method == "POST":
        return _phrasing_tags_save(request, instruction)
    revision = instruction.current_revision
    results = selectors.phrasing_results(revision.id)
    scored = [r for r in results if r.source == "scored"]
    variant_id = id_param(request.GET, "variant") or (scored[0].variant_id if scored else 0)
    wrong_only = request.GET.get("wrong") == "1"
    page = Paginator(
        selectors.phrasing_predictions(variant_id=variant_id, revision_id=revision.id, wrong_only=wrong_only),
        PREDICTIONS_PER_PAGE,
    ).get_page(request.GET.get("page"))
    for prediction in page:
        instance = prediction.instance
        prediction.prompt = templating.render(revision.template, instance.inputs, instance.options)
        prediction.options = list(
            zip(
                option_texts(instruction.task, revision, instance),
                prediction.logliks,
                range(len(prediction.logliks)),
            )
        )
    context = {
        "instruction": instruction,
        "revision": revision,
        "standings": selectors.phrasing_standings(results, instruction.task) if not request.htmx else [],
        "scored": scored,
        "variant_id": variant_id,
        "wrong_only": wrong_only,
        "wrong_query": "&wrong=1" if wrong_only else "",
        "page": page,
        "tags": list(instruction.tags.all()),
    }
    if can_tag(request.user, instruction):
        context["tag_form"] = TagsForm(initial={"tags": [tag.slug for tag in context["tags"]]})
    template = (
        "evaluation/phrasing_detail.html#predictions" if request.htmx else "evaluation/phrasing_detail.html"
    )
    return render(request, template, context)
