"""Citable leaderboard snapshots: freeze a leaderboard view, a snapshot's permanent page, the lists, and what
changed between two snapshots (docs/snapshots.md).

A snapshot's page and its diffs are drawn from its frozen answer alone (LeaderboardSnapshot.payload): its
rows, figures, intervals, tie groups, ground and rules are the ones the API gave when it was frozen, and its
figure labels, units and definitions are the ones that answer listed. Nothing live is read but the list of
other snapshots to compare with."""

from __future__ import annotations

from datetime import UTC, datetime

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from collection.models import Benchmark
from core.errors import ApplicationError, response_headers
from evaluation.api_snapshots import snapshot_freeze
from evaluation.leaderboards import selectors, snapshots
from evaluation.models import LeaderboardSnapshot, PhrasingSet
from evaluation.stats import figure_registry, snapshot_diff

SNAPSHOTS_PER_PAGE = 50
# The other snapshots the diff form offers: the benchmark's newest.
DIFF_CHOICES = 100
SECTIONS = (
    ("results", "Ranked"),
    ("partial", "Partial coverage (not ranked with the rows above)"),
    ("estimated", "Estimated (not yet scored exhaustively)"),
)
STATUS_TEXT = {
    snapshot_diff.BEYOND: "beyond its interval",
    snapshot_diff.WITHIN: "within its interval",
    snapshot_diff.DEFINED: "now defined",
    snapshot_diff.UNDEFINED: "now n/a",
    snapshot_diff.NO_INTERVAL: "no interval to judge by",
}


# --- Freezing ---------------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def snapshot_new(request: HttpRequest, slug: str) -> HttpResponse:
    """The leaderboard's "Freeze this view" link: GET shows what will be frozen (the view in the query
    string) with a title and a note to add; POST freezes it. Any signed-in user may freeze a view."""
    benchmark = get_object_or_404(Benchmark, slug=slug)
    params = request.POST if request.method == "POST" else request.GET
    context = {"benchmark": benchmark, "title": params.get("title", ""), "note": params.get("note", "")}
    try:
        view = snapshots.view_from_params(benchmark, params)
    except ApplicationError as exc:
        context["error"] = exc
        return render(request, "evaluation/snapshot_new.html", context, status=exc.status_code)
    context |= {
        "view": view,
        "query": view.query(benchmark.slug),
        "described": snapshots.view_description(view, benchmark.slug),
    }
    if request.method == "POST":
        try:
            snapshot, created = snapshot_freeze(
                benchmark=benchmark, view=view, by=request.user, title=context["title"], note=context["note"]
            )
        except ApplicationError as exc:
            context["error"] = exc
            response = render(request, "evaluation/snapshot_new.html", context, status=exc.status_code)
            for name, value in response_headers(exc).items():
                response[name] = value
            return response
        if created:
            messages.success(
                request, f"Frozen as snapshot {snapshot.public_id}: cite it by this page's address."
            )
        else:
            messages.info(
                request,
                f"Nothing has changed since snapshot {snapshot.public_id} froze this view: here it is.",
            )
        return redirect(snapshot)
    return render(request, "evaluation/snapshot_new.html", context)


# --- Lists -------------------------------------------------------------------------------------------------


def snapshot_list(request: HttpRequest) -> HttpResponse:
    return _list(request, snapshots.snapshot_list(), benchmark=None)


def benchmark_snapshots(request: HttpRequest, slug: str) -> HttpResponse:
    found = snapshots.snapshot_list(benchmark_slug=slug)
    benchmark = Benchmark.objects.filter(slug=slug).first()
    # A benchmark since deleted keeps its snapshots, and their list.
    if benchmark is None and not found.exists():
        raise Http404("No such benchmark.")
    return _list(request, found, benchmark=benchmark, slug=slug)


def _list(request: HttpRequest, found, *, benchmark: Benchmark | None, slug: str = "") -> HttpResponse:
    page = Paginator(found, SNAPSHOTS_PER_PAGE).get_page(request.GET.get("page"))
    rows = [
        (
            snapshot,
            snapshots.view_description(snapshots.view_of(snapshot), snapshot.benchmark_slug),
            _when(snapshot.created_at),
        )
        for snapshot in page
    ]
    return render(
        request,
        "evaluation/snapshot_list.html",
        {"page": page, "rows": rows, "benchmark": benchmark, "slug": slug},
    )


# --- A snapshot --------------------------------------------------------------------------------------------


def snapshot_detail(request: HttpRequest, snapshot_id: str) -> HttpResponse:
    snapshot = snapshots.snapshot_get(snapshot_id)
    answer = snapshot.leaderboard()
    every = request.GET.get("figures") == "all"
    others = snapshots.snapshot_list(benchmark_slug=snapshot.benchmark_slug).exclude(pk=snapshot.pk)
    url = request.build_absolute_uri(snapshot.get_absolute_url())
    context = {
        "snapshot": snapshot,
        "answer": answer,
        "view": snapshots.view_description(snapshots.view_of(snapshot), snapshot.benchmark_slug),
        "api_query": snapshots.api_query(snapshot),
        "created": _when(snapshot.created_at),
        "data_version": data_version_text(snapshot.data_version),
        "url": url,
        "cite": citation(snapshot, url),
        "bibtex": bibtex(snapshot, url),
        "every_figure": every,
        **frozen_board(answer, sort=snapshot.sort, every=every),
        "units": units(answer),
        "others": [(other, _when(other.created_at)) for other in others[:DIFF_CHOICES]],
    }
    return render(request, "evaluation/snapshot_detail.html", context)


def units(answer: dict) -> str:
    """The answer's figures by unit: "AvgP, Min, ... in percent; Std and Spread in percentage points"."""
    by_unit: dict[str, list[str]] = {}
    for figure in answer.get("figures") or ():
        if isinstance(figure, dict) and "label" in figure:
            by_unit.setdefault(figure.get("unit", "pct"), []).append(figure["label"])

    def joined(labels: list[str]) -> str:
        return ", ".join(labels[:-1]) + " and " + labels[-1] if len(labels) > 1 else "".join(labels)

    words = figure_registry.UNIT_WORDS
    return "; ".join(f"{joined(labels)} {words.get(unit, unit)}" for unit, labels in by_unit.items())


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def data_version_text(version: list) -> str:
    """The data version as a sentence: the newest summary's update time and the number of summaries."""
    if not isinstance(version, list) or len(version) != 4:
        return str(version)
    newest, count, estimated_newest, estimated = version
    if not count and not estimated:
        return "no figures yet"
    text = f"{count} benchmark summar{'y' if count == 1 else 'ies'}, the newest written {_iso(newest)}"
    if estimated:
        text += f"; {estimated} estimated task summar{'y' if estimated == 1 else 'ies'}, the newest {_iso(estimated_newest)}"
    return text


def _iso(value) -> str:
    try:
        return datetime.fromisoformat(value).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (TypeError, ValueError):
        return "(unknown)"


def citation(snapshot: LeaderboardSnapshot, url: str) -> str:
    title = snapshot.title or f"{snapshot.benchmark_name} robustness leaderboard"
    sets = dict(PhrasingSet.choices)
    phrasings = sets.get(snapshot.phrasing_set, snapshot.phrasing_set)
    return (
        f"PhraseBench. {title} (snapshot {snapshot.public_id}; phrasings: {phrasings}; sorted by {snapshot.sort}), "
        f"frozen {_when(snapshot.created_at)}. SHA-256 {snapshot.sha256}. {url}"
    )


def _bibtex_text(text: str) -> str:
    # BibTeX's special characters, escaped so a title cannot break the entry.
    for char, escaped in (("\\", r"\textbackslash{}"), ("{", r"\{"), ("}", r"\}")):
        text = text.replace(char, escaped)
    for char in "&%$#_":
        text = text.replace(char, "\\" + char)
    return text


def bibtex(snapshot: LeaderboardSnapshot, url: str) -> str:
    title = snapshot.title or f"{snapshot.benchmark_name} robustness leaderboard"
    created = snapshot.created_at.astimezone(UTC)
    return "\n".join(
        [
            f"@misc{{phrasebench-{snapshot.public_id},",
            f"  title        = {{{{{_bibtex_text(title)}}} (PhraseBench snapshot {snapshot.public_id})}},",
            "  author       = {{PhraseBench contributors}},",
            f"  year         = {{{created.year}}},",
            f"  month        = {{{created.strftime('%b').lower()}}},",
            f"  howpublished = {{\\url{{{url}}}}},",
            f"  note         = {{Frozen {_when(snapshot.created_at)}; phrasings: {snapshot.phrasing_set}; "
            f"sorted by {snapshot.sort};",
            f"                  SHA-256 {snapshot.sha256}}},",
            "}",
        ]
    )


# --- The frozen table --------------------------------------------------------------------------------------


def _format(value, unit: str) -> str:
    # As evaluation/templatetags/figures.py shows figures, from the unit the frozen answer gave.
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return "–"
    return f"{value:.3f}" if unit == "ratio" else f"{100 * value:.1f}"


def _cell(record: dict, figure: dict) -> dict:
    name, unit = figure["name"], figure.get("unit", "pct")
    value = record.get(name)
    bounds = (record.get("ci") or {}).get(name)
    text = _format(value, unit)
    reason = ""
    if value is None and figure.get("spread") and "min_phrasings" in record:
        text = "n/a"
        reason = f"Needs at least {record['min_phrasings']} phrasings on a task; no task here has that many."
    ci = f"[{_format(bounds[0], unit)}, {_format(bounds[1], unit)}]" if bounds and value is not None else ""
    title = " ".join(
        part
        for part in (
            f"{figure.get('label', name)}: {figure.get('definition', '')}",
            "Brackets: 95% interval." if ci else "",
            reason,
        )
        if part
    )
    return {
        "text": text,
        "ci": ci,
        "title": title,
        "below_chance": name == "avgp" and bool(record.get("below_chance")),
        "chance": _format(record.get("chance"), "pct"),
    }


def _rows(records: list, columns: list[dict], sort: str) -> list[dict]:
    rows, previous = [], None
    for record in records:
        rank, group = record.get("rank_interval"), record.get("tie_group")
        coverage = record.get("coverage") or {}
        rows.append(
            {
                "record": record,
                "rank": (str(rank[0]) if rank[0] == rank[1] else f"{rank[0]}–{rank[1]}") if rank else "–",
                "tie_group": group,
                "tie_class": ("tie-even" if group % 2 == 0 else "tie-odd") if group else "",
                "tie_start": bool(group and previous is not None and group != previous),
                "coverage": f"{coverage.get('shared_with_ground', '–')}/{coverage.get('cells', '–')}"
                if coverage
                else "",
                "cells_share": _format(record.get("cells_share"), "pct"),
                "cells": [_cell(record, figure) | {"key": figure["name"] == sort} for figure in columns],
            }
        )
        previous = group
    return rows


def frozen_board(answer: dict, *, sort: str, every: bool) -> dict:
    """The frozen answer as the snapshot page shows it: the glance figures (or every figure the answer
    describes), each row's rank interval, tie band, coverage and figures with their intervals."""
    figures = [f for f in answer.get("figures") or () if isinstance(f, dict) and "name" in f]
    glance = set(selectors.PRIMARY_FIGURES) | {sort}
    columns = [f for f in figures if every or f["name"] in glance]
    sections = [
        {"key": key, "heading": heading, "rows": _rows(answer.get(key) or [], columns, sort)}
        for key, heading in SECTIONS
    ]
    return {
        "columns": columns,
        "sections": [s for s in sections if s["rows"] or s["key"] == "results"],
        "ranked": any(r.get("rank_interval") for r in answer.get("results") or ()),
        "ground": answer.get("ground") or {},
    }


# --- What changed ------------------------------------------------------------------------------------------


def snapshot_diff_pick(request: HttpRequest, snapshot_id: str) -> HttpResponse:
    """The snapshot page's "compare with" form (a GET form cannot build a path): on to the diff's page."""
    snapshot = snapshots.snapshot_get(snapshot_id)
    if not request.GET.get("to"):
        return redirect(snapshot)
    other = snapshots.snapshot_get(request.GET["to"])
    # Older to newer, whichever was picked on which page: "what changed since".
    old, new = sorted([snapshot, other], key=lambda s: (s.created_at, s.id))
    return redirect("snapshot_diff", snapshot_id=old.public_id, other_id=new.public_id)


def snapshot_diff_page(request: HttpRequest, snapshot_id: str, other_id: str) -> HttpResponse:
    old, new = snapshots.snapshot_get(snapshot_id), snapshots.snapshot_get(other_id)
    context = {
        "old": old,
        "new": new,
        "old_when": _when(old.created_at),
        "new_when": _when(new.created_at),
        "old_version": data_version_text(old.data_version),
        "new_version": data_version_text(new.data_version),
        "rule": snapshot_diff.RULE,
    }
    try:
        changes = snapshots.snapshots_diff(old, new)
    except ApplicationError as exc:
        context["error"] = exc
        return render(request, "evaluation/snapshot_diff.html", context, status=exc.status_code)
    context |= {
        "changes": changes,
        "rows": [_row_change(change) for change in changes.changed],
        "rank_rows": [_row_change(change) for change in changes.rank_changes],
        "flagged": [
            (change.label, _figure_change(figure))
            for change in changes.changed
            for figure in change.flagged_figures
        ],
        "within": [
            (change.label, _figure_change(figure))
            for change in changes.changed
            for figure in change.figures_within
        ],
        "sections": snapshot_diff.SECTIONS,
        "units": units(new.leaderboard()),
    }
    return render(request, "evaluation/snapshot_diff.html", context)


def _rank_text(interval) -> str:
    if not interval:
        return "–"
    low, high = interval
    return str(low) if low == high else f"{low}–{high}"


def _row_change(change: snapshot_diff.RowChange) -> dict:
    return {
        "change": change,
        "old_section": snapshot_diff.SECTIONS[change.old.section],
        "new_section": snapshot_diff.SECTIONS[change.new.section],
        "old_rank": _rank_text(change.old.rank_interval),
        "new_rank": _rank_text(change.new.rank_interval),
        "old_ties": ", ".join(change.tied_with[0]) or "none",
        "new_ties": ", ".join(change.tied_with[1]) or "none",
    }


def _signed(value: float | None, unit: str) -> str:
    if value is None:
        return "–"
    text = f"{value:+.3f}" if unit == "ratio" else f"{100 * value:+.1f} pp"
    return text.replace("-", "−")


def _figure_change(figure: snapshot_diff.FigureChange) -> dict:
    def shown(value, interval) -> dict:
        return {
            "text": _format(value, figure.unit) if value is not None else "n/a",
            "ci": f"[{_format(interval[0], figure.unit)}, {_format(interval[1], figure.unit)}]"
            if interval and value is not None
            else "",
        }

    return {
        "figure": figure,
        "old": shown(figure.old, figure.old_interval),
        "new": shown(figure.new, figure.new_interval),
        "delta": _signed(figure.delta, figure.unit),
        "status": STATUS_TEXT[figure.status],
    }
