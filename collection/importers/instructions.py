"""Phrasings from files: the study's extracted instructions, and generic JSONL or CSV.

InstructionEval (`--format instructioneval`) reads both extracted files of the study (shared/data/
paper_instructions, see its SOURCE.txt); each entry's shape says which kind it is.
- Unobserved (human-written) entries carry `strings`: we import every entry written as a template
  (`input_template`, or `input_text(formatted)` for the few written as f-strings) onto the task it was written
  for, approved, in the crowd collection (they were written by practitioners and no model was tuned on them).
  Entries that are not templates are reported and skipped: `BBL/Default` and `Alpaca/Default` name BIG-bench's
  own prompt (import_bigbench creates it as the task's benchmark-default phrasing), and Alpaca/Unobserved
  entries are a bare instruction that the study's Alpaca wrapper combines with a fixed input block.
- Observed entries carry `collection` and `template`: the instruction-tuning collections' templates (FLAN,
  NIV2, T0, Alpaca's QA/BC) already written in our placeholder language, with the label words the study scores
  and what the extraction verified. They go into the named collection (FLAN -> flan, NIV2 -> niv2, T0 -> t0,
  Alpaca -> alpaca), approved. An entry is skipped, and reported by id with the reason, when the app could not
  reproduce the study with it: the study's own code cannot build it (T0/BC/1-8, T0/Classification/3), its
  prompt cannot be written as our template (Play_Dialog NIV2/BC/1-10), the study scores other answers than
  the app would (option texts or lowercase letters on a letter-answered task: our letter tasks score A, B, ...
  whatever the phrasing's label words), or its task is not imported. Alpaca's QA/BC templates are skipped
  for now: the study scored them on Alpaca models only, inside Alpaca's with-input wrapper, and until a
  phrasing can belong to a prompt format every registered model would score them and count them as
  unobserved (for Flan-T5 and T0 too), which the study never did.
Either way the study's id (e.g. "BBL/Unobserved/3", "NIV2/QA/7") is the external id, so a second import adds
nothing; a malformed entry refuses the whole file, naming the task key and the id.

Generic (`--format jsonl|csv`): one phrasing per row with columns task ("benchmark/task"), template,
collection (default "crowd"), author (a username) or source, and optionally external_id and labels
(JSON list, or "|"-separated in CSV). Rows with an external id are matched on it; rows without one are
matched on their normalised text within the task, so importing a file twice adds nothing.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

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
from collection.services import instruction_create, uploads_check, uploads_lock
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

# Observed entries: the study's instruction-tuning collections (an id's first part), as our collections' slugs.
STUDY_COLLECTIONS = {"FLAN": "flan", "NIV2": "niv2", "T0": "t0", "Alpaca": "alpaca"}
OBSERVED_ID = re.compile(r"(?P<collection>FLAN|NIV2|T0|Alpaca)/(QA|BC|Classification)/[0-9]+")

# Why an observed entry is skipped, checked in this order.
SKIP_STUDY_FAILS = "the study's own code cannot build its prompt (its scores come from code not published)"
SKIP_NO_TASK = "its task is not imported (import the task, then run this again)"
SKIP_PROMPT = "its prompt cannot be written as a template here (see the file's not_expressible)"
SKIP_OPTION_TEXTS = "the study scores the option texts; the app scores letters on a letter-answered task"
SKIP_OWN_LETTERS = (
    "the study scores its own letters (a, b, ...); the app scores A, B, ... on a letter-answered task"
)
SKIP_UNVERIFIED = "the file does not say that the app scores it as the study does"
SKIP_ALPACA_FORMAT = (
    "an Alpaca-format template: the study scored it on Alpaca models only, in Alpaca's with-input wrapper; "
    "until phrasings belong to a prompt format (issue 15, item 3) every model would score it, and it would "
    "count as an unobserved phrasing for Flan-T5 and T0"
)


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
    # The study collection an observed row comes from (FLAN, NIV2, T0, Alpaca), for the report's counts.
    group: str = ""


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
    # reason -> study task key -> skipped ids, for the report's notes.
    skipped: dict[str, dict[str, list[str]]] = {}
    for key, entry in data.items():
        if key == "_meta":
            continue
        if key not in STUDY_TASKS:
            raise ImportFailed(path, f"unknown study task '{key}'; known: {', '.join(sorted(STUDY_TASKS))}")
        instructions = entry.get("instructions") if isinstance(entry, dict) else None
        if not isinstance(instructions, list):
            raise ImportFailed(path, f"'{key}' has no 'instructions' list")
        benchmark_slug, task_slug = STUDY_TASKS[key]
        task = _task(benchmark_slug, task_slug)
        observed = [item for item in instructions if _is_observed(item)]
        unobserved = [item for item in instructions if not _is_observed(item)]
        if unobserved:
            rows += _unobserved_rows(key, task, unobserved, source, report)
        for item in observed:
            result = _observed_row(path, key, task, item, source)
            if isinstance(result, str):
                report.add(f"{item['collection']}: skipped, {result}")
                skipped.setdefault(result, {}).setdefault(key, []).append(item["id"])
            else:
                rows.append(result)
    report.notes += _skip_notes(skipped)
    return rows


def _unobserved_rows(
    key: str, task: Task | None, instructions: list, source: str, report: ImportReport
) -> list[PhrasingRow]:
    templates = [(item, _template_of(item)) for item in instructions]
    templates = [(item, text) for item, text in templates if text is not None]
    report.add("entries that are not templates (skipped)", len(instructions) - len(templates))
    if task is None:
        benchmark_slug, task_slug = STUDY_TASKS[key]
        report.add("templates skipped: task not imported", len(templates))
        report.notes.append(
            f"{key}: task {benchmark_slug}/{task_slug} is not imported; its {len(templates)} templates "
            "were skipped (import the task first, then run this again)"
        )
        return []
    return [
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
        for item, text in templates
    ]


def _is_observed(item) -> bool:
    return isinstance(item, dict) and "collection" in item


def _observed_row(path: Path, key: str, task: Task | None, item: dict, source: str) -> PhrasingRow | str:
    """The phrasing an observed entry becomes, or the reason it is skipped. A malformed entry refuses the
    file, naming the task key and the id."""
    study_id = item.get("id")
    where = f"{key} {study_id}"
    match = OBSERVED_ID.fullmatch(study_id) if isinstance(study_id, str) else None
    if match is None or match["collection"] != item["collection"]:
        raise ImportFailed(
            path,
            f"{where}: expected an id 'Collection/Type/N' (Collection: {', '.join(STUDY_COLLECTIONS)}; Type: QA, "
            f"BC or Classification) that matches its 'collection' ({item['collection']!r})",
        )
    if "template" not in item:
        raise ImportFailed(path, f"{where}: no 'template' (null when the prompt cannot be written as one)")
    template = item["template"]
    if template is not None and not isinstance(template, str):
        raise ImportFailed(path, f"{where}: 'template' must be text or null")
    problems = item.get("not_expressible") or []
    if not isinstance(problems, list) or not all(isinstance(problem, dict) for problem in problems):
        raise ImportFailed(path, f"{where}: 'not_expressible' must be null or a list of objects")
    what = [str(problem.get("what", "")) for problem in problems]
    if "study code fails" in what:
        return SKIP_STUDY_FAILS
    if task is None:
        return SKIP_NO_TASK
    if item["collection"] == "Alpaca":
        return SKIP_ALPACA_FORMAT
    if template is None or "prompt" in what:
        return SKIP_PROMPT
    scored = item.get("scored_answers")
    if not isinstance(scored, dict):
        raise ImportFailed(path, f"{where}: no 'scored_answers' saying what the study scores")
    labels = _observed_labels(path, where, task, item)
    letters = task.answer_format == Task.AnswerFormat.LETTER
    if scored.get("same_as_study") is not True or any(w.startswith("scoring") for w in what):
        if letters:
            return SKIP_OWN_LETTERS if labels else SKIP_OPTION_TEXTS
        return SKIP_UNVERIFIED
    if letters and labels is not None:
        # Letter-answered tasks score A, B, ... whatever the phrasing's label words: imported, these would
        # be scored on other answers than the study's.
        return SKIP_OWN_LETTERS
    return PhrasingRow(
        where=where,
        task=task,
        template=template,
        collection_slug=STUDY_COLLECTIONS[item["collection"]],
        author=None,
        source=source,
        external_id=study_id,
        labels=labels,
        group=item["collection"],
    )


def _observed_labels(path: Path, where: str, task: Task, item: dict) -> list[str] | None:
    """An observed entry's label words in the task's label order (the file gives them in
    `label_words_order`), or None when the study scores the task's own answers."""
    words = item.get("label_words")
    if words is None:
        return None
    if not isinstance(words, list) or not all(isinstance(word, str) for word in words):
        raise ImportFailed(path, f"{where}: 'label_words' must be a list of words or null")
    if task.answer_format == Task.AnswerFormat.LETTER:
        return words
    order = item.get("label_words_order")
    if not isinstance(order, list) or len(order) != len(words) or sorted(order) != sorted(task.label_space):
        raise ImportFailed(
            path,
            f"{where}: 'label_words_order' ({order!r}) must name each of the task's labels "
            f"({', '.join(task.label_space)}) once, one per label word",
        )
    by_label = dict(zip(order, words))
    return [by_label[label] for label in task.label_space]


def _skip_notes(skipped: dict[str, dict[str, list[str]]]) -> list[str]:
    """One note per reason: the skipped ids, folded into ranges, with the study tasks that share them."""
    notes = []
    for reason, by_task in skipped.items():
        keys_by_ids: dict[str, list[str]] = {}
        for key, ids in by_task.items():
            keys_by_ids.setdefault(_id_ranges(ids), []).append(key)
        where = "; ".join(f"{ids} on {', '.join(keys)}" for ids, keys in keys_by_ids.items())
        notes.append(f"skipped, {reason}: {where}")
    return notes


def _id_ranges(ids: list[str]) -> str:
    """'NIV2/QA/11-20, T0/QA/2-4, T0/QA/6' for a list of study ids: runs of consecutive numbers folded."""
    numbers: dict[str, list[int]] = {}
    for study_id in ids:
        prefix, _, number = study_id.rpartition("/")
        numbers.setdefault(prefix, []).append(int(number))
    parts = []
    for prefix, values in numbers.items():
        values.sort()
        start = previous = values[0]
        for value in [*values[1:], None]:
            if value is not None and value == previous + 1:
                previous = value
                continue
            parts.append(f"{prefix}/{start}" + (f"-{previous}" if previous != start else ""))
            if value is not None:
                start = previous = value
    return ", ".join(parts)


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
            created = phrasing_row_import(path, row, status, report)
            if row.group:
                report.add(f"{row.group}: imported" if created else f"{row.group}: already there")
    return report


UPLOAD_FORMATS = {".csv": "csv", ".jsonl": "jsonl"}


def import_instructions_upload(*, name: str, data: bytes, by) -> ImportReport:
    """Phrasings a curator uploads in the browser, in the generic CSV or JSONL format, credited to them.
    Checked against the upload limits, then imported as pending (each goes through the review queue, where
    another curator decides) in one transaction: one bad row refuses the whole file and nothing is written,
    and so does a file that brings the curator past UPLOADS_PER_HOUR new phrasings (RateLimited)."""
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
        uploads_lock(by)
        started = timezone.now()
        for row in phrasing_rows(name, records, uploader=by):
            phrasing_row_import(name, row, Instruction.Status.PENDING, report)
        # Counted once the rows are written, inside the transaction: over the hourly limit, none is kept.
        uploads_check(uploader=by, started=started)
    return report


def phrasing_row_import(path: Path | str, row: PhrasingRow, status: str, report: ImportReport) -> bool:
    """Create the row's phrasing, or find it already there (then nothing changes); True when created."""
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
        return False
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
    return True
