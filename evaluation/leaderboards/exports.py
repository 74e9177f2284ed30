"""CSV and JSON downloads of the tables. CSV cells that a spreadsheet would run as a formula are defused."""

from __future__ import annotations

import csv
import io
import json

from django.http import HttpResponse

from evaluation.stats import figure_registry

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Figures are exported as the fractions they are stored as (pages show percentages and points), rounded: the
# bootstrap's intervals are far wider than the sixth decimal. Each row says so in its `scale` column.
DECIMALS = 6
# POSIX and PDR are ratios, not accuracies: the registry's unit says which is which.
SCALE = (
    "rounded to 6 decimals; accuracies and their differences as fractions of 1 (0.5 = 50%; a difference of "
    "0.05 = 5 points); posix and pdr as the plain ratios they are"
)


def safe_cell(value):
    # A leading quote makes a spreadsheet show the text instead of evaluating it (CSV formula injection);
    # numbers stay numbers.
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_response(filename: str, header: list[str], rows: list[list]) -> HttpResponse:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for row in rows:
        writer.writerow([safe_cell(v) for v in row])
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
    return response


def json_response(filename: str, payload) -> HttpResponse:
    response = HttpResponse(json.dumps(payload, indent=1), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="{filename}.json"'
    return response


def rounded(value):
    """A float rounded to DECIMALS; anything else (None, a bool, an int, text) as it is."""
    return round(value, DECIMALS) if isinstance(value, float) else value


def figure_rows(rows) -> tuple[list[str], list[list], list[dict]]:
    """Header, CSV rows and JSON records for a list of selectors.Row: every figure the tables list
    (figure_registry.columns), each with its interval."""
    keys = [figure.name for figure in figure_registry.columns()]
    header = ["model", "variant", "imported", "provenance", "tasks", "phrasings"]
    for key in keys:
        header += [key, f"{key}_ci_low", f"{key}_ci_high"]
    header += ["ci_method", "chance", "below_chance", "partial_coverage", "estimated", "cells_share", "scale"]
    # Ranked rows' standing on the sorted figure (evaluation/stats/ranking.py); empty for rows not ranked.
    header += ["rank_low", "rank_high", "tie_group"]
    table, records = [], []
    for row in rows:
        f = row.figures
        values = [
            row.variant.model.name,
            row.variant.kind,
            row.is_imported,
            row.variant.provenance,
            f.get("tasks", 1),
            f.get("phrasings"),
        ]
        for key in keys:
            low, high = (f.get("ci") or {}).get(key, (None, None))
            values += [rounded(f.get(key)), rounded(low), rounded(high)]
        values += [
            f.get("ci_method"),
            rounded(f.get("chance")),
            row.below_chance,
            getattr(row, "partial", False),
        ]
        values += [bool(f.get("estimated")), rounded(f.get("cells_share", 1.0)), SCALE]
        standing = getattr(row, "standing", None)
        values += [standing.rank_low, standing.rank_high, standing.tie_group] if standing else [None] * 3
        table.append(values)
        records.append(dict(zip(header, values)))
    return header, table, records
