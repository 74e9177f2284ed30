"""What changed between two frozen leaderboards: two answers of the leaderboard API (/api/leaderboard/), as
two snapshots keep them (evaluation/leaderboards/snapshots.py). Pure Python, no Django.

Rows are matched by `variant_id` across the answer's sections: ranked (`results`), `estimated` and
`partial` (present when the view asked for it). For each pair:
- a row only in the newer answer is *added*, one only in the older is *removed*;
- a row in both may have moved between sections (ranked, estimated, partial coverage);
- a ranked row's *rank interval* may differ, and so may its *tie group*, compared as the rows it is tied with
  (group numbers shift whenever a group above splits or merges, so the numbers themselves say little);
- its tasks, phrasings and coverage may differ (a new phrasing adds a cell to every row scored on it);
- each figure's value may differ. RULE says which figure changes are flagged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

# The answer's sections, in the order the pages list them, with what they are called there.
SECTIONS = {"results": "ranked", "estimated": "estimated", "partial": "partial coverage"}

# Two values closer than this are the same figure (a float read back from JSON is exact, so any real change
# is far larger).
TOLERANCE = 1e-12

# A row's counts that say what its figures stand on.
BASIS = (("tasks", "tasks"), ("phrasings", "phrasings"))

RULE = (
    "Rows are matched by model variant. A figure change is flagged when the newer value lies outside the "
    "older snapshot's 95% interval for that figure (beyond its interval), when the figure became defined or "
    "undefined (n/a), or when the older snapshot has no interval to judge it by. A change within the older "
    "interval is listed but not flagged: every new phrasing moves the figures a little. Where both snapshots "
    "have an interval and the two do not overlap, the change is also marked as intervals disjoint, the "
    "stronger sign. A tie group change means the row is tied with other rows than before."
)

# FigureChange.status values.
BEYOND = "beyond"  # the new value is outside the old interval
WITHIN = "within"  # inside it: listed, not flagged
DEFINED = "defined"  # n/a before, a value now
UNDEFINED = "undefined"  # a value before, n/a now
NO_INTERVAL = "no interval"  # the old value has no interval to judge the change by


@dataclass(frozen=True)
class FigureChange:
    name: str
    label: str
    unit: str
    old: float | None
    new: float | None
    old_interval: tuple[float, float] | None
    new_interval: tuple[float, float] | None

    @property
    def status(self) -> str:
        if self.old is None:
            return DEFINED
        if self.new is None:
            return UNDEFINED
        if self.old_interval is None:
            return NO_INTERVAL
        low, high = self.old_interval
        return WITHIN if low - TOLERANCE <= self.new <= high + TOLERANCE else BEYOND

    @property
    def flagged(self) -> bool:
        return self.status != WITHIN

    @property
    def disjoint(self) -> bool:
        """Both snapshots have an interval and they do not overlap."""
        if self.old_interval is None or self.new_interval is None:
            return False
        return self.new_interval[1] < self.old_interval[0] or self.new_interval[0] > self.old_interval[1]

    @property
    def delta(self) -> float | None:
        return None if self.old is None or self.new is None else self.new - self.old

    def as_dict(self) -> dict:
        return asdict(self) | {
            "status": self.status,
            "flagged": self.flagged,
            "disjoint": self.disjoint,
            "delta": self.delta,
        }


@dataclass(frozen=True)
class Row:
    """A row as one answer has it."""

    key: int  # variant_id
    label: str  # the variant's name
    section: str  # a key of SECTIONS
    rank_interval: tuple[int, int] | None
    tie_group: int | None


@dataclass(frozen=True)
class RowChange:
    """A row in both answers, and what differs."""

    key: int
    label: str
    old: Row
    new: Row
    tied_with: tuple[tuple[str, ...], tuple[str, ...]]  # labels of the other rows in its tie group, old, new
    basis: tuple[tuple[str, object, object], ...]  # (what, old, new) for its tasks, phrasings, coverage
    figures: tuple[FigureChange, ...]  # every figure whose value changed

    @property
    def section_changed(self) -> bool:
        return self.old.section != self.new.section

    @property
    def rank_changed(self) -> bool:
        return self.old.rank_interval != self.new.rank_interval

    @property
    def ties_changed(self) -> bool:
        return set(self.tied_with[0]) != set(self.tied_with[1])

    @property
    def flagged_figures(self) -> tuple[FigureChange, ...]:
        return tuple(f for f in self.figures if f.flagged)

    @property
    def figures_within(self) -> tuple[FigureChange, ...]:
        return tuple(f for f in self.figures if not f.flagged)

    @property
    def changed(self) -> bool:
        return bool(
            self.section_changed or self.rank_changed or self.ties_changed or self.basis or self.figures
        )

    def as_dict(self) -> dict:
        return {
            "variant_id": self.key,
            "variant": self.label,
            "section": [SECTIONS[self.old.section], SECTIONS[self.new.section]],
            "rank_interval": [self.old.rank_interval, self.new.rank_interval],
            "tie_group": [self.old.tie_group, self.new.tie_group],
            "tied_with": [list(self.tied_with[0]), list(self.tied_with[1])],
            "ties_changed": self.ties_changed,
            "basis": [{"what": what, "old": old, "new": new} for what, old, new in self.basis],
            "figures": [f.as_dict() for f in self.figures],
        }


@dataclass(frozen=True)
class SnapshotDiff:
    added: tuple[Row, ...]
    removed: tuple[Row, ...]
    changed: tuple[RowChange, ...]  # rows in both with any difference, in the newer answer's order
    unchanged: tuple[Row, ...]
    ground: tuple[Mapping, Mapping]  # the two answers' common ground (tasks, phrasings, rows)
    view: tuple[tuple[str, object, object], ...] = field(
        default=()
    )  # (what, old, new) where the views differ

    @property
    def flagged(self) -> int:
        """How many figure changes are flagged, over every row."""
        return sum(len(row.flagged_figures) for row in self.changed)

    @property
    def rank_changes(self) -> tuple[RowChange, ...]:
        return tuple(r for r in self.changed if r.rank_changed or r.ties_changed or r.section_changed)

    @property
    def ground_changed(self) -> bool:
        keys = ("tasks", "phrasings", "ranked_rows", "partial_rows")
        return any(self.ground[0].get(k) != self.ground[1].get(k) for k in keys)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed or self.ground_changed or self.view)

    def as_dict(self) -> dict:
        def row(r: Row) -> dict:
            return {
                "variant_id": r.key,
                "variant": r.label,
                "section": SECTIONS[r.section],
                "rank_interval": r.rank_interval,
                "tie_group": r.tie_group,
            }

        return {
            "rule": RULE,
            "view": [{"what": what, "old": old, "new": new} for what, old, new in self.view],
            "ground": {"old": dict(self.ground[0]), "new": dict(self.ground[1])},
            "added": [row(r) for r in self.added],
            "removed": [row(r) for r in self.removed],
            "changed": [r.as_dict() for r in self.changed],
            "unchanged": [row(r) for r in self.unchanged],
            "flagged": self.flagged,
        }


def _number(value) -> float | None:
    # Booleans are ints to Python; a figure is never one.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _interval(record: Mapping, name: str) -> tuple[float, float] | None:
    bounds = (record.get("ci") or {}).get(name)
    if not isinstance(bounds, list | tuple) or len(bounds) != 2:
        return None
    low, high = _number(bounds[0]), _number(bounds[1])
    return None if low is None or high is None else (low, high)


def _rows(answer: Mapping) -> dict[int, tuple[Row, Mapping]]:
    rows: dict[int, tuple[Row, Mapping]] = {}
    for section in SECTIONS:
        for record in answer.get(section) or ():
            if not isinstance(record.get("variant_id"), int):
                continue  # not a row of the API's shape
            rank = record.get("rank_interval")
            row = Row(
                key=record["variant_id"],
                label=str(record.get("variant") or record.get("model") or record["variant_id"]),
                section=section,
                rank_interval=tuple(rank) if rank else None,
                tie_group=record.get("tie_group"),
            )
            rows.setdefault(row.key, (row, record))  # a row is in one section; the first wins if not
    return rows


def _tie_mates(rows: dict[int, tuple[Row, Mapping]]) -> dict[int, tuple[str, ...]]:
    groups: dict[int, list[Row]] = {}
    for row, _ in rows.values():
        if row.section == "results" and row.tie_group is not None:
            groups.setdefault(row.tie_group, []).append(row)
    return {
        row.key: tuple(sorted(other.label for other in members if other.key != row.key))
        for members in groups.values()
        for row in members
    }


def _figures(old: Mapping, new: Mapping) -> list[dict]:
    """The figures the answers describe (their `figures` list): the newer's, then any only the older has."""
    described = {f["name"]: f for f in old.get("figures") or () if "name" in f}
    described |= {f["name"]: f for f in new.get("figures") or () if "name" in f}
    order = [f["name"] for f in new.get("figures") or () if "name" in f]
    order += [name for name in described if name not in order]
    return [described[name] for name in order]


def _basis(old: Mapping, new: Mapping) -> tuple[tuple[str, object, object], ...]:
    out = [(label, old.get(key), new.get(key)) for key, label in BASIS if old.get(key) != new.get(key)]
    old_cov, new_cov = old.get("coverage") or {}, new.get("coverage") or {}
    for key, label in (("cells", "cells scored"), ("shared_with_ground", "cells on the common ground")):
        if old_cov.get(key) != new_cov.get(key):
            out.append((label, old_cov.get(key), new_cov.get(key)))
    return tuple(out)


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= TOLERANCE


def diff(
    old: Mapping, new: Mapping, *, views: tuple[Mapping[str, object], Mapping[str, object]] | None = None
) -> SnapshotDiff:
    """What changed from the `old` answer to the `new` one (both as /api/leaderboard/ gives them). `views`
    describes the two views asked for ({what: value}, say the sort figure); by default the benchmark and
    phrasing set the answers name. Where they differ the diff says so: rows compare less well."""
    old_rows, new_rows = _rows(old), _rows(new)
    old_mates, new_mates = _tie_mates(old_rows), _tie_mates(new_rows)
    figures = _figures(old, new)
    added = tuple(row for key, (row, _) in new_rows.items() if key not in old_rows)
    removed = tuple(row for key, (row, _) in old_rows.items() if key not in new_rows)
    changed, unchanged = [], []
    for key, (row, record) in new_rows.items():
        if key not in old_rows:
            continue
        before, old_record = old_rows[key]
        moved = []
        for figure in figures:
            name = figure["name"]
            a, b = _number(old_record.get(name)), _number(record.get(name))
            if _same(a, b):
                continue
            moved.append(
                FigureChange(
                    name=name,
                    label=str(figure.get("label", name)),
                    unit=str(figure.get("unit", "pct")),
                    old=a,
                    new=b,
                    old_interval=_interval(old_record, name),
                    new_interval=_interval(record, name),
                )
            )
        change = RowChange(
            key=key,
            label=row.label,
            old=before,
            new=row,
            tied_with=(old_mates.get(key, ()), new_mates.get(key, ())),
            basis=_basis(old_record, record),
            figures=tuple(moved),
        )
        (changed if change.changed else unchanged).append(change if change.changed else row)
    if views is None:
        views = tuple(
            {"benchmark": answer.get("benchmark"), "phrasing set": answer.get("phrasing_set")}
            for answer in (old, new)
        )
    view = tuple(
        (what, views[0].get(what), views[1].get(what))
        for what in dict.fromkeys([*views[0], *views[1]])
        if views[0].get(what) != views[1].get(what)
    )
    return SnapshotDiff(
        added=added,
        removed=removed,
        changed=tuple(changed),
        unchanged=tuple(unchanged),
        ground=(dict(old.get("ground") or {}), dict(new.get("ground") or {})),
        view=view,
    )
