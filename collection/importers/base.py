"""What every importer shares: the failure type, the report, safe file reading, benchmark and task upserts."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from django.conf import settings

from collection.models import Benchmark, Collection, Task
from core.errors import ApplicationError
from core.parsing import slug_problem

T = TypeVar("T")


class ImportFailed(ApplicationError):
    """An import refused as a whole. The message names the file and the reason; nothing was written."""

    def __init__(self, path: Path | str, reason: str, *, details: list[str] | None = None) -> None:
        super().__init__(f"{path}: {reason}", details=details)
        self.path = str(path)
        self.reason = reason


@dataclass
class ImportReport:
    """What an import did, counted per kind of row, plus notes worth reading (skips, quirks)."""

    counts: Counter = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    # reason -> source key (e.g. a study task) -> ids skipped for it, for importers that skip by id.
    skipped: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    def add(self, key: str, n: int = 1) -> None:
        self.counts[key] += n

    def add_instances(self, upsert) -> None:
        """The counts of a services.instances_upsert result."""
        self.add("instances created", upsert.created)
        self.add("instances unchanged", upsert.unchanged)
        if upsert.widened:
            self.add("instances given new input fields", upsert.widened)
        if upsert.reordered:
            self.add("instances keeping their earlier option order", upsert.reordered)

    def lines(self) -> list[str]:
        lines = [f"{key}: {value:,}" for key, value in sorted(self.counts.items())]
        return lines + [f"note: {note}" for note in self.notes]


def read_text(path: Path) -> str:
    """A file's text as UTF-8, refused with a clear reason when missing, too large or not UTF-8 text."""
    if not path.is_file():
        raise ImportFailed(path, "no such file")
    size = path.stat().st_size
    if size > settings.IMPORT_MAX_BYTES:
        raise ImportFailed(path, f"{size:,} bytes is over the import limit of {settings.IMPORT_MAX_BYTES:,}")
    return decode_text(path, path.read_bytes())


def decode_text(where: Path | str, data: bytes) -> str:
    """UTF-8 text (a byte-order mark is dropped), or refused saying what the bytes look like instead."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ImportFailed(where, "UTF-16 text (as Excel's 'Unicode text' saves it); re-save it as UTF-8")
    if data.startswith(b"PK\x03\x04"):
        raise ImportFailed(where, "a ZIP archive (an Excel workbook?), not text; export it as CSV in UTF-8")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFailed(
            where, f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); re-save it as UTF-8"
        ) from None
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise ImportFailed(where, f"line {line}: a NUL byte; this is not a text file")
    return text


def limited(where: Path | str, rows: Iterable[T], limit: int | None = None) -> Iterator[T]:
    """The rows, refused as a whole once there are more than `limit` (IMPORT_MAX_ROWS by default)."""
    limit = limit or settings.IMPORT_MAX_ROWS
    for count, row in enumerate(rows, start=1):
        if count > limit:
            raise ImportFailed(where, f"more than {limit:,} rows; the limit is {limit:,} per file")
        yield row


# A record of any import format is a flat object (a list of label words at most); deeper is not data.
JSONL_MAX_DEPTH = 32
# Longest number a line may hold. Python refuses to read integers past 4,300 digits (a ValueError from inside
# the JSON parser); no field wants anywhere near this many.
JSONL_MAX_DIGITS = 100


class _Unreadable(ValueError):
    """Raised from inside json.loads for content it would otherwise accept or fail on unhelpfully."""


def _number(text: str) -> int:
    if len(text.lstrip("-")) > JSONL_MAX_DIGITS:
        raise _Unreadable(f"a number {len(text.lstrip('-')):,} digits long (at most {JSONL_MAX_DIGITS})")
    return int(text)


def _json_line_problem(value) -> str | None:
    """What makes a parsed line unusable, walked with a stack (not recursion): nesting deeper than
    JSONL_MAX_DEPTH, or a text PostgreSQL cannot store (a NUL character, an unpaired UTF-16 surrogate,
    which JSON's \\u escapes can spell)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return "a text holds a NUL character (\\u0000)"
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return "a text holds an unpaired surrogate (a \\ud800-\\udfff escape on its own), not a character"
        elif isinstance(item, dict | list):
            if depth > JSONL_MAX_DEPTH:
                return f"nests deeper than {JSONL_MAX_DEPTH} levels"
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return None


def read_jsonl(path: Path | str, text: str, *, max_rows: int | None = None) -> list[tuple[str, dict]]:
    """(where, record) pairs for the non-blank lines of a JSONL file; each line must be a JSON object. Any
    content is either read or refused naming the line and the problem: very deep nesting (a RecursionError in
    the parser) and huge numbers (a ValueError) are refusals like broken JSON."""
    records = []
    lines = ((n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip())
    for number, line in limited(path, lines, max_rows):
        try:
            record = json.loads(line, parse_int=_number)
        except json.JSONDecodeError as exc:
            raise ImportFailed(path, f"line {number}: not valid JSON ({exc.msg})") from None
        except RecursionError:
            raise ImportFailed(path, f"line {number}: nests deeper than {JSONL_MAX_DEPTH} levels") from None
        except ValueError as exc:  # _Unreadable, or another number Python cannot read
            raise ImportFailed(path, f"line {number}: {exc}") from None
        if not isinstance(record, dict):
            raise ImportFailed(path, f"line {number}: expected a JSON object")
        problem = _json_line_problem(record)
        if problem:
            raise ImportFailed(path, f"line {number}: {problem}")
        records.append((f"line {number}", record))
    return records


def slug_check(where: Path | str, slug: object, what: str, *, max_length: int = 100) -> str:
    """The slug, or ImportFailed saying why it cannot name a page (core.parsing.slug_problem)."""
    problem = slug_problem(slug, what, max_length=max_length)
    if problem:
        raise ImportFailed(where, problem)
    return slug


def benchmark_upsert(
    *, slug: str, name: str, description: str = "", source: str = ""
) -> tuple[Benchmark, bool]:
    slug_check(source or "import", slug, "the benchmark slug")
    return Benchmark.objects.get_or_create(
        slug=slug, defaults={"name": name, "description": description, "source": source}
    )


def task_upsert(*, benchmark: Benchmark, slug: str, report: ImportReport, **fields) -> Task:
    """Create the task, or bring an existing one's definition up to date (fields, labels, parent). A new task
    scores each phrasing on a sample of EVAL_SAMPLE_SIZE instances (all of them when it has fewer); an
    existing one keeps the sample it has, which its page may have switched to all instances."""
    slug_check(fields.get("source") or "import", slug, "the task slug", max_length=200)
    sample = {"eval_sample_size": settings.EVAL_SAMPLE_SIZE or None}
    task, created = Task.objects.get_or_create(benchmark=benchmark, slug=slug, defaults={**sample, **fields})
    if created:
        report.add("tasks created")
        return task
    changed = [name for name, value in fields.items() if getattr(task, name) != value]
    if changed:
        for name in changed:
            setattr(task, name, fields[name])
        task.save(update_fields=changed)
        report.add("tasks updated")
    else:
        report.add("tasks unchanged")
    return task


def collection_get(slug: str, path: Path | str) -> Collection:
    try:
        return Collection.objects.get(slug=slug)
    except Collection.DoesNotExist:
        known = ", ".join(Collection.objects.values_list("slug", flat=True))
        raise ImportFailed(path, f"unknown collection '{slug}'; known collections: {known}") from None
