"""Citable leaderboard snapshots: a leaderboard frozen under a permanent id (docs/snapshots.md).

A snapshot keeps the leaderboard API's answer (/api/leaderboard/) for one view of a benchmark (phrasing set,
task kind, sort figure and direction, partial rows or not) as the exact text the API gave, its SHA-256, and
the data version (selectors.leaderboard_version) it came from. Its pages and API read that text alone, never
live data, so approvals, retirements and re-scoring afterwards leave it as it was.

The API's answer is produced by the API's own view (evaluation/api_snapshots.py calls it), so a snapshot
says exactly what the live API said; this module validates the view, stores the answer and reads snapshots.
Freezing a view whose answer is the same as an existing snapshot's finds that snapshot instead of making a
second one (the database's snapshot_unique_content constraint).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.http import Http404

from collection.models import Benchmark
from core.errors import ApplicationError
from evaluation.leaderboards import selectors
from evaluation.models import (
    SNAPSHOT_ID_ALPHABET,
    SNAPSHOT_ID_LENGTH,
    SNAPSHOT_ID_REGEX,
    LeaderboardSnapshot,
    PhrasingSet,
)
from evaluation.stats import snapshot_diff

TITLE_MAX = 200
NOTE_MAX = 2000
# A fresh random id that happens to be taken is drawn again; fifty bits make even one retry unlikely.
ID_ATTEMPTS = 5


@dataclass(frozen=True)
class View:
    """The leaderboard view a snapshot freezes: the API's query parameters, validated."""

    phrasing_set: str = PhrasingSet.ALL
    task_kind: str = ""
    sort: str = "avgp"
    descending: bool = True
    partial: bool = False

    def query(self, benchmark_slug: str) -> dict[str, str]:
        """The leaderboard API's query for this view, every parameter spelled out."""
        return {
            "benchmark": benchmark_slug,
            "set": self.phrasing_set,
            "kind": self.task_kind,
            "sort": self.sort,
            "dir": "desc" if self.descending else "asc",
            "partial": "1" if self.partial else "0",
        }


def view_from_params(benchmark: Benchmark, params: Mapping[str, object]) -> View:
    """The view named by the leaderboard's parameters (`set`, `kind`, `sort`, `dir`, `partial`; a query string,
    a form or an API body), each checked: the live API passes over what it does not know, but a citation must
    say exactly what it froze. Every problem is named at once."""

    def text(name: str, default: str) -> str:
        value = params.get(name, default)
        return default if value in (None, "") else str(value)

    problems = []
    phrasing_set = text("set", PhrasingSet.ALL)
    if phrasing_set not in PhrasingSet.values:
        problems.append(f"set must be one of {', '.join(PhrasingSet.values)}.")
    kinds = selectors.benchmark_task_kinds(benchmark)
    kind = text("kind", "")
    if kind and kind not in kinds:
        problems.append(
            f"kind must be blank (every kind) or one of {benchmark.slug}'s task kinds: {', '.join(kinds)}."
        )
    sort = text("sort", "avgp")
    if sort not in selectors.sort_keys():
        problems.append(f"sort must be one of {', '.join(sorted(selectors.sort_keys()))}.")
    direction = text("dir", "desc")
    if direction not in ("asc", "desc"):
        problems.append("dir must be asc or desc.")
    partial = params.get("partial", False)
    if partial in (True, "1", "true", "on"):
        partial = True
    elif partial in (False, None, "", "0", "false"):
        partial = False
    else:
        problems.append("partial must be 1 or 0.")
    if problems:
        raise ApplicationError("This leaderboard view cannot be frozen.", details=problems)
    return View(phrasing_set, kind, sort, direction == "desc", partial)


def version_json(version: tuple) -> list:
    """selectors.leaderboard_version as JSON: its times in ISO 8601."""
    return [value.isoformat() if isinstance(value, datetime) else value for value in version]


def snapshot_create(
    *,
    benchmark: Benchmark,
    view: View,
    payload: bytes,
    data_version: tuple,
    by=None,
    title: str = "",
    note: str = "",
) -> tuple[LeaderboardSnapshot, bool]:
    """Keep `payload`, the leaderboard API's answer for `view` at `data_version`, under a new permanent id;
    or, when a snapshot of the same view holds the same answer, that one. Returns (snapshot, created)."""
    title, note = title.strip(), note.strip()
    problems = []
    if len(title) > TITLE_MAX:
        problems.append(f"The title is {len(title)} characters; at most {TITLE_MAX}.")
    if len(note) > NOTE_MAX:
        problems.append(f"The note is {len(note)} characters; at most {NOTE_MAX}.")
    if problems:
        raise ApplicationError("The snapshot was not made.", details=problems)
    try:
        text = payload.decode("utf-8")
        answer = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApplicationError(f"The leaderboard's answer is not JSON: {exc}") from exc
    if not isinstance(answer, dict) or "results" not in answer:
        raise ApplicationError("The leaderboard's answer has no rows to freeze.")
    if not any(answer.get(section) for section in ("results", "partial", "estimated")):
        # A permanent, citable id for a table with nothing in it would cite nothing.
        raise ApplicationError("This view has no results yet, so there is nothing to freeze.")
    fields = {
        "benchmark_slug": benchmark.slug,
        "phrasing_set": view.phrasing_set,
        "task_kind": view.task_kind,
        "sort": view.sort,
        "descending": view.descending,
        "with_partial": view.partial,
        "sha256": hashlib.sha256(payload).hexdigest(),
    }
    for _ in range(ID_ATTEMPTS):
        existing = LeaderboardSnapshot.objects.filter(**fields).first()
        if existing is not None:
            return existing, False
        try:
            with transaction.atomic():
                snapshot = LeaderboardSnapshot.objects.create(
                    public_id=new_public_id(),
                    benchmark=benchmark,
                    benchmark_name=benchmark.name,
                    data_version=version_json(data_version),
                    payload=text,
                    title=title,
                    note=note,
                    created_by=by if by is not None and by.is_authenticated else None,
                    **fields,
                )
            return snapshot, True
        except IntegrityError:
            # The same answer frozen at the same moment by someone else (found above on the next pass), or
            # an id already taken (drawn again).
            continue
    raise ApplicationError("No snapshot id could be drawn; try again.")


def new_public_id() -> str:
    return "".join(secrets.choice(SNAPSHOT_ID_ALPHABET) for _ in range(SNAPSHOT_ID_LENGTH))


def is_public_id(value: object) -> bool:
    return isinstance(value, str) and re.fullmatch(SNAPSHOT_ID_REGEX, value) is not None


def snapshot_get(public_id: str) -> LeaderboardSnapshot:
    """The snapshot with this id, or 404 (for anything that is not one, too: snapshots are public)."""
    if not is_public_id(public_id):
        raise Http404("No such snapshot.")
    snapshot = LeaderboardSnapshot.objects.select_related("created_by").filter(public_id=public_id).first()
    if snapshot is None:
        raise Http404("No such snapshot.")
    return snapshot


def snapshot_list(*, benchmark_slug: str | None = None) -> QuerySet[LeaderboardSnapshot]:
    """Snapshots, newest first, without their frozen answers (a list shows what they froze, not the rows)."""
    snapshots = LeaderboardSnapshot.objects.select_related("created_by").defer("payload")
    if benchmark_slug is not None:
        snapshots = snapshots.filter(benchmark_slug=benchmark_slug)
    return snapshots


def view_of(snapshot: LeaderboardSnapshot) -> View:
    return View(
        snapshot.phrasing_set, snapshot.task_kind, snapshot.sort, snapshot.descending, snapshot.with_partial
    )


def api_query(snapshot: LeaderboardSnapshot) -> str:
    """The leaderboard API query the snapshot froze the answer of."""
    return urlencode(view_of(snapshot).query(snapshot.benchmark_slug))


def view_description(view: View, benchmark_slug: str) -> dict[str, str]:
    """The view as the pages and a diff name it: {what: value}."""
    sets = dict(PhrasingSet.choices)
    return {
        "benchmark": benchmark_slug,
        "phrasing set": str(sets.get(view.phrasing_set, view.phrasing_set)),
        "task kind": view.task_kind or "every kind",
        "sorted by": f"{view.sort} ({'descending' if view.descending else 'ascending'})",
        "partial rows": "listed apart" if view.partial else "not listed",
    }


def snapshots_diff(old: LeaderboardSnapshot, new: LeaderboardSnapshot) -> snapshot_diff.SnapshotDiff:
    """What changed from `old` to `new`: two snapshots of one benchmark (snapshot_diff.RULE)."""
    if old.benchmark_slug != new.benchmark_slug:
        raise ApplicationError(
            f"These snapshots are of different benchmarks ({old.benchmark_slug} and {new.benchmark_slug}): "
            "only snapshots of one benchmark compare."
        )
    return snapshot_diff.diff(
        old.leaderboard(),
        new.leaderboard(),
        views=tuple(view_description(view_of(s), s.benchmark_slug) for s in (old, new)),
    )
