"""Phrasings from files: the study's extracted instructions, and generic JSONL or CSV.

InstructionEval (`--format instructioneval`): the study's human-written templates. We import every entry
written as a template (`input_template`, or `input_text(formatted)` for the few written as f-strings) onto
the task it was written for, approved, in the crowd collection (they were written by practitioners and
no model was tuned on them), keeping the study's id (e.g. "BBL/Unobserved/3") as the external id.
Entries that are not templates are reported and skipped: `BBL/Default` and `Alpaca/Default` name BIG-bench's
own prompt (import_bigbench creates it as the task's benchmark-default phrasing), and Alpaca entries are a
bare instruction that the study's Alpaca wrapper combines with a fixed input block.

Generic (`--format jsonl|csv`): one phrasing per row with columns task ("benchmark/task"), template,
collection (default "crowd"), author (a username) or source, and optionally external_id and labels
(JSON list, or "|"-separated in CSV). Rows with an external id are matched on it; rows without one are
matched on their normalised text within the task, so importing a file twice adds nothing.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from collection.importers.base import (
    ImportFailed,
    ImportReport,
    collection_get,
    decode_text,
    limited,
    read_jsonl,
    read_text,
)
from collection.models import Instruction, InstructionRevision, Task, normalised_key
from collection.services import instruction_create
from core.errors import ApplicationError

# The study's task keys, mapped to (benchmark, task slug) as our importers name them. The study evaluated
# only the boolean subtask of strange_stories and the five-object subtask of logical_deduction.
STUDY_TASKS = {
    "MMLU_General": ("mmlu", "mmlu"),
    "BBQ_Lite": ("bigbench-lite", "bbq_lite_json"),
    "Code_Line_Description": ("bigbench-lite", "code_line_description"),
    "Conceptual_Combinations": ("bigbench-lite", "conceptual_combinations"),
    "Hindu_Knowledge": ("bigbench-lite", "hindu_knowledge"),
    "Known_Unknowns": ("bigbench-lite", "known_unknowns"),
    "Language_Identification": ("bigbench-lite", "language_identification"),
    "Logic_Grid_Puzzle": ("bigbench-lite", "logic_grid_puzzle"),
    "Logical_Deduction": ("bigbench-lite", "logical_deduction-five_objects"),
    "Novel_Concepts": ("bigbench-lite", "novel_concepts"),
    "Play_Dialog": ("bigbench-lite", "play_dialog_same_or_different"),
    "Strange_Stories": ("bigbench-lite", "strange_stories-boolean"),
    "StrategyQA": ("bigbench-lite", "strategyqa"),
    "Vitaminc_Fact_Verification": ("bigbench-lite", "vitaminc_fact_verification"),
    "Winowhy": ("bigbench-lite", "winowhy"),
}

# Templates whose answer words differ from the task's labels, read from the study's label_space per
# template (configs/BBH/*.py): e.g. Play_Dialog's second template asks "Answer yes or no" for same/different.
STUDY_LABELS = {
    ("Play_Dialog", "BBL/Unobserved/2"): ["yes", "no"],
    ("Play_Dialog", "BBL/Unobserved/9"): ["Yes", "No"],
    ("Play_Dialog", "BBL/Unobserved/10"): ["A", "B"],
    ("Winowhy", "BBL/Unobserved/4"): ["Yes", "No"],
    ("Winowhy", "BBL/Unobserved/6"): ["Yes", "No"],
    ("Logic_Grid_Puzzle", "BBL/Unobserved/3"): ["1", "2", "3", "4", "5"],
    ("Logic_Grid_Puzzle", "BBL/Unobserved/9"): ["1", "2", "3", "4", "5"],
}

TEMPLATE_KEYS = ("input_template", "input_text(formatted)")


@dataclass
class PhrasingRow:
    where: str
    task: Task
    template: str
    collection_slug: str
    author: object | None
    source: str
    external_id: str
    labels: list[str] | None


def _task(benchmark_slug: str, task_slug: str) -> Task | None:
    return Task.objects.filter(benchmark__slug=benchmark_slug, slug=task_slug).first()


def read_instructioneval(path: Path, report: ImportReport) -> list[PhrasingRow]:
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise ImportFailed(path, f"not valid JSON: {exc.msg} at line {exc.lineno}") from None
    meta = data.get("_meta") if isinstance(data, dict) else None
    if not isinstance(meta, dict) or "source_repo" not in meta:
        raise ImportFailed(path, "no '_meta' with 'source_repo': not an InstructionEval extraction")
    source = f"InstructionEval ({meta['source_repo']}@{str(meta.get('commit', ''))[:7]})"
    rows = []
    for key, entry in data.items():
        if key == "_meta":
            continue
        if key not in STUDY_TASKS:
            raise ImportFailed(path, f"unknown study task '{key}'; known: {', '.join(sorted(STUDY_TASKS))}")
        instructions = entry.get("instructions") if isinstance(entry, dict) else None
        if not isinstance(instructions, list):
            raise ImportFailed(path, f"'{key}' has no 'instructions' list")
        templates = [(item, _template_of(item)) for item in instructions]
        templates = [(item, text) for item, text in templates if text is not None]
        report.add("entries that are not templates (skipped)", len(instructions) - len(templates))
        benchmark_slug, task_slug = STUDY_TASKS[key]
        task = _task(benchmark_slug, task_slug)
        if task is None:
            report.add("templates skipped: task not imported", len(templates))
            report.notes.append(
                f"{key}: task {benchmark_slug}/{task_slug} is not imported; its {len(templates)} templates "
                "were skipped (import the task first, then run this again)"
            )
            continue
        for item, text in templates:
            rows.append(
                PhrasingRow(
                    where=f"{key} {item.get('id')}",
                    task=task,
                    template=text,
                    collection_slug="crowd",
                    author=None,
                    source=source,
                    external_id=str(item.get("id") or ""),
                    labels=STUDY_LABELS.get((key, item.get("id"))),
                )
            )
    return rows


def _template_of(item) -> str | None:
    strings = item.get("strings") if isinstance(item, dict) else None
    if not isinstance(strings, dict) or not str(item.get("id", "")).startswith(("BBL/", "MMLU/")):
        return None
    for key in TEMPLATE_KEYS:
        if isinstance(strings.get(key), str):
            return strings[key]
    return None


def parse_generic(
    where: Path | str, text: str, fmt: str, *, max_rows: int | None = None
) -> list[tuple[str, dict]]:
    """(where, record) pairs of a generic JSONL or CSV file; labels given as "a|b" in CSV become lists."""
    if fmt == "jsonl":
        records = read_jsonl(where, text, max_rows=max_rows)
    else:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        try:
            missing = {"task", "template"} - set(reader.fieldnames or [])
            if missing:
                raise ImportFailed(where, f"missing CSV column(s): {', '.join(sorted(missing))}")
            records = [
                (f"line {reader.line_num}", dict(record)) for record in limited(where, reader, max_rows)
            ]
        except csv.Error as exc:
            raise ImportFailed(where, f"line {reader.line_num}: malformed CSV ({exc})") from None
        for where_row, record in records:
            if None in record:
                raise ImportFailed(where, f"{where_row}: more values than columns")
            if None in record.values():
                raise ImportFailed(where, f"{where_row}: fewer values than columns (is the row cut short?)")
            if record.get("labels"):
                record["labels"] = record["labels"].split("|")
    if not records:
        raise ImportFailed(where, "the file has no rows")
    return records


def read_generic(path: Path, fmt: str) -> list[PhrasingRow]:
    return phrasing_rows(path, parse_generic(path, read_text(path), fmt))


def phrasing_rows(path: Path | str, records: list[tuple[str, dict]], *, uploader=None) -> list[PhrasingRow]:
    """Resolve each record's task, author and collection; the first bad record refuses the file.

    An upload (`uploader` given) is credited to the uploader, so the self-review rule applies to what they
    upload, and it goes into the crowd collection: naming other authors or a model's tuning collection is
    for the import command, which only admins run."""
    users = get_user_model().objects
    rows = []
    for where, record in records:
        if uploader is not None:
            if record.get("author") and record["author"] != uploader.get_username():
                raise ImportFailed(
                    path,
                    f"{where}: an upload is credited to you, not to '{record['author']}'; "
                    "say where a phrasing comes from in 'source'",
                )
            if (record.get("collection") or "crowd") != "crowd":
                raise ImportFailed(
                    path, f"{where}: uploads go into the crowd collection, not '{record['collection']}'"
                )
            record = {**record, "author": uploader.get_username()}
        task_ref = str(record.get("task") or "")
        benchmark_slug, _, task_slug = task_ref.partition("/")
        task = _task(benchmark_slug, task_slug)
        if task is None:
            raise ImportFailed(path, f"{where}: no task '{task_ref}' (write it as benchmark/task)")
        template = record.get("template")
        if not isinstance(template, str):
            raise ImportFailed(path, f"{where}: 'template' must be text")
        author = None
        if record.get("author"):
            author = users.filter(username=record["author"]).first()
            if author is None:
                raise ImportFailed(path, f"{where}: no user named '{record['author']}'")
        source = str(record.get("source") or "")
        if author is None and not source:
            raise ImportFailed(path, f"{where}: give an 'author' (username) or a 'source'")
        labels = record.get("labels") or None
        if labels is not None and not (isinstance(labels, list) and all(isinstance(w, str) for w in labels)):
            raise ImportFailed(path, f"{where}: 'labels' must be a list of words")
        rows.append(
            PhrasingRow(
                where=where,
                task=task,
                template=template,
                collection_slug=str(record.get("collection") or "crowd"),
                author=author,
                source=source,
                external_id=str(record.get("external_id") or ""),
                labels=labels,
            )
        )
    return rows


def import_instructions(path: Path, *, fmt: str, status: str | None = None) -> ImportReport:
    report = ImportReport()
    if fmt == "instructioneval":
        status = status or Instruction.Status.APPROVED
    elif fmt in {"jsonl", "csv"}:
        status = status or Instruction.Status.PENDING
    else:
        raise ImportFailed(path, f"unknown format '{fmt}'; use instructioneval, jsonl or csv")
    if status not in Instruction.Status.values:
        raise ImportFailed(path, f"unknown status '{status}'")
    with transaction.atomic():
        rows = read_instructioneval(path, report) if fmt == "instructioneval" else read_generic(path, fmt)
        for row in rows:
            phrasing_row_import(path, row, status, report)
    return report


UPLOAD_FORMATS = {".csv": "csv", ".jsonl": "jsonl"}


def import_instructions_upload(*, name: str, data: bytes, by) -> ImportReport:
    """Phrasings a curator uploads in the browser, in the generic CSV or JSONL format, credited to them.
    Checked against the upload limits, then imported as pending (each goes through the review queue, where
    another curator decides) in one transaction: one bad row refuses the whole file and nothing is written."""
    fmt = UPLOAD_FORMATS.get(Path(name).suffix.lower())
    name = Path(name).name[-200:] or "upload"
    if fmt is None:
        raise ImportFailed(name, "upload a .csv or .jsonl file")
    if len(data) > settings.UPLOAD_MAX_BYTES:
        raise ImportFailed(
            name, f"{len(data):,} bytes is over the upload limit of {settings.UPLOAD_MAX_BYTES:,}"
        )
    records = parse_generic(name, decode_text(name, data), fmt, max_rows=settings.UPLOAD_MAX_ROWS)
    report = ImportReport()
    with transaction.atomic():
        for row in phrasing_rows(name, records, uploader=by):
            phrasing_row_import(name, row, Instruction.Status.PENDING, report)
    return report


def phrasing_row_import(path: Path | str, row: PhrasingRow, status: str, report: ImportReport) -> None:
    existing = Instruction.objects.filter(task=row.task)
    if row.external_id:
        existing = existing.filter(source=row.source, external_id=row.external_id)
    else:
        same_text = InstructionRevision.objects.filter(
            instruction__task=row.task, normalised_hash=normalised_key(row.template)
        ).values("instruction")
        existing = existing.filter(id__in=same_text)
    found = existing.select_related("current_revision").first()
    if found is not None:
        if found.template != row.template or (found.current_revision.labels or None) != row.labels:
            raise ImportFailed(
                path,
                f"{row.where}: phrasing {row.external_id or found.pk} already exists with different text",
            )
        report.add("phrasings unchanged")
        return
    try:
        instruction_create(
            task=row.task,
            template=row.template,
            collection=collection_get(row.collection_slug, path),
            author=row.author,
            source=row.source,
            external_id=row.external_id,
            labels=row.labels,
            status=status,
        )
    except ApplicationError as exc:
        if isinstance(exc, ImportFailed):
            raise
        raise ImportFailed(path, f"{row.where}: {exc.message}", details=exc.details) from None
    report.add("phrasings created")
