"""Generic task import: instances from JSONL, CSV or a Hugging Face dataset, into tasks of one benchmark.

Every row names its task and carries its inputs, options and answer:
  JSONL  {"task": "sentiment", "id": "17", "split": "eval", "inputs": {"question": "..."},
          "options": ["negative", "positive"], "answer": 1}
  CSV    task,id,split,question,...,option_A,option_B,...,answer
         (every column that is not task/id/split/answer/option_* is an input field)
`answer` is the option's index, its letter (A, B, ...) or its text. `split` defaults to eval, `id` to the
row number. A task is created on first sight: its input fields are the row's; when every row offers the
same options it is answered with those words (binary or classification), otherwise with letters.
"""

from __future__ import annotations

import csv
import io
import string
from collections import defaultdict
from pathlib import Path

from django.conf import settings
from django.db import transaction

from collection.importers.base import (
    ImportFailed,
    ImportReport,
    benchmark_upsert,
    limited,
    read_jsonl,
    read_text,
    slug_check,
    task_upsert,
)
from collection.models import Instance, Task
from collection.services import instances_upsert

LETTERS = string.ascii_uppercase
RESERVED = {"task", "id", "split", "answer", "options", "inputs"}


def read_rows(path: Path, fmt: str) -> list[tuple[str, dict]]:
    """(where, record) pairs with keys task, id, split, inputs, options, answer."""
    text = read_text(path)
    records: list[tuple[str, dict]] = []
    if fmt == "jsonl":
        records = read_jsonl(path, text)
    elif fmt == "csv":
        reader = csv.DictReader(io.StringIO(text, newline=""))
        columns = reader.fieldnames or []
        missing = {"task", "answer"} - set(columns)
        option_columns = [c for c in columns if c.lower().startswith("option_")]
        if missing or not option_columns:
            need = sorted(missing) + ([] if option_columns else ["option_A, option_B, ..."])
            raise ImportFailed(path, f"missing CSV column(s): {', '.join(need)}")
        input_columns = [c for c in columns if c not in RESERVED and c not in option_columns]
        try:
            for record in limited(path, reader):
                if None in record:
                    raise ImportFailed(path, f"line {reader.line_num}: more values than columns")
                if None in record.values():
                    raise ImportFailed(
                        path, f"line {reader.line_num}: fewer values than columns (is the row cut short?)"
                    )
                options = [record[c] for c in option_columns if record[c] not in (None, "")]
                inputs = {c: record[c] or "" for c in input_columns}
                row = {k: record.get(k) for k in ("task", "id", "split", "answer")}
                records.append((f"line {reader.line_num}", row | {"inputs": inputs, "options": options}))
        except csv.Error as exc:
            raise ImportFailed(path, f"line {reader.line_num}: malformed CSV ({exc})") from None
    else:
        raise ImportFailed(path, f"unknown format '{fmt}'; use jsonl or csv")
    return records


def _gold(where: str, answer, options: list[str]) -> int:
    if isinstance(answer, int) and not isinstance(answer, bool) and 0 <= answer < len(options):
        return answer
    if isinstance(answer, str):
        text = answer.strip()
        if text in options:
            return options.index(text)
        if len(text) == 1 and text.upper() in LETTERS[: len(options)]:
            return LETTERS.index(text.upper())
        if text.isdigit() and int(text) < len(options):
            return int(text)
    raise ValueError(f"{where}: answer {answer!r} is not an option's index, letter or text")


def import_task_records(
    source: Path | str, records: list[tuple[str, dict]], *, benchmark_slug: str, benchmark_name: str = ""
) -> ImportReport:
    """Validate every record, then write them in one transaction."""
    slug_check(source, benchmark_slug, "the benchmark slug")
    if not records:
        raise ImportFailed(source, "no rows")
    if len(records) > settings.IMPORT_MAX_ROWS:
        raise ImportFailed(source, f"{len(records):,} rows is over the limit of {settings.IMPORT_MAX_ROWS:,}")
    by_task: dict[str, list[dict]] = defaultdict(list)
    for number, (where, record) in enumerate(records):
        task_slug = str(record.get("task") or "").strip()
        if not task_slug:
            raise ImportFailed(source, f"{where}: no task")
        slug_check(source, task_slug, f"{where}: the task", max_length=200)
        inputs = record.get("inputs")
        options = record.get("options")
        if not isinstance(inputs, dict) or not inputs or not all(isinstance(v, str) for v in inputs.values()):
            raise ImportFailed(source, f"{where}: 'inputs' must map field names to texts")
        if not isinstance(options, list) or len(options) < 2 or not all(isinstance(o, str) for o in options):
            raise ImportFailed(source, f"{where}: needs at least two options, as texts")
        try:
            gold = _gold(where, record.get("answer"), options)
        except ValueError as exc:
            raise ImportFailed(source, str(exc)) from None
        split = str(record.get("split") or Instance.Split.EVAL)
        if split not in Instance.Split.values:
            raise ImportFailed(
                source, f"{where}: split '{split}' is not one of {', '.join(Instance.Split.values)}"
            )
        by_task[task_slug].append(
            {
                "source_id": str(record.get("id") if record.get("id") not in (None, "") else number),
                "split": split,
                "inputs": inputs,
                "options": options,
                "gold": gold,
            }
        )

    report = ImportReport()
    with transaction.atomic():
        benchmark, created = benchmark_upsert(slug=benchmark_slug, name=benchmark_name or benchmark_slug)
        report.add("benchmarks created" if created else "benchmarks unchanged")
        for task_slug, rows in by_task.items():
            fields = sorted({name for row in rows for name in row["inputs"]})
            option_sets = {tuple(row["options"]) for row in rows}
            if len(option_sets) == 1:
                labels = list(rows[0]["options"])
                kind = Task.Kind.BINARY if len(labels) == 2 else Task.Kind.CLASSIFICATION
                answer_format = Task.AnswerFormat.OPTION_TEXT
            else:
                width = max(len(row["options"]) for row in rows)
                labels, kind, answer_format = (
                    list(LETTERS[:width]),
                    Task.Kind.MULTIPLE_CHOICE,
                    Task.AnswerFormat.LETTER,
                )
            task = task_upsert(
                benchmark=benchmark,
                slug=task_slug,
                report=report,
                name=task_slug.replace("_", " ").replace("-", " ").capitalize(),
                kind=kind,
                answer_format=answer_format,
                input_fields=fields,
                label_space=labels,
                max_options=max(len(row["options"]) for row in rows),
                source=str(source),
            )
            rows = [row | {"inputs": {f: row["inputs"].get(f, "") for f in fields}} for row in rows]
            report.add_instances(instances_upsert(task=task, rows=rows))
    return report


def import_tasks_file(path: Path, *, fmt: str, benchmark_slug: str, benchmark_name: str = "") -> ImportReport:
    return import_task_records(
        path, read_rows(path, fmt), benchmark_slug=benchmark_slug, benchmark_name=benchmark_name
    )


def hf_records(
    dataset,
    *,
    task: str,
    question_field: str,
    options_field: str,
    answer_field: str,
    extra_fields: list[str],
    split: str,
) -> list[tuple[str, dict]]:
    """Rows of a Hugging Face dataset as task records (e.g. cais/mmlu: question, choices, answer)."""
    columns = set(dataset.column_names)
    needed = {question_field, options_field, answer_field, *extra_fields}
    if needed - columns:
        raise ImportFailed(
            "dataset",
            f"missing column(s) {', '.join(sorted(needed - columns))}; it has {', '.join(sorted(columns))}",
        )
    records = []
    for number, row in enumerate(dataset):
        inputs = {"question": str(row[question_field])} | {f: str(row[f]) for f in extra_fields}
        records.append(
            (
                f"row {number}",
                {
                    "task": task,
                    "id": str(row.get("id", number)),
                    "split": split,
                    "inputs": inputs,
                    "options": [str(o) for o in row[options_field]],
                    "answer": row[answer_field],
                },
            )
        )
    return records


def import_hf_dataset(
    name: str,
    *,
    config: str | None,
    hf_split: str,
    benchmark_slug: str,
    task: str,
    question_field: str,
    options_field: str,
    answer_field: str,
    extra_fields: list[str],
    split: str,
) -> ImportReport:
    """Download a dataset from the Hugging Face hub by name and import it (needs network access)."""
    # The names first: a download can take minutes, and then the import would refuse them.
    slug_check(f"hf:{name}", benchmark_slug, "the benchmark slug")
    slug_check(f"hf:{name}", task, "the task", max_length=200)
    try:
        import datasets
    except ImportError:
        raise ImportFailed(name, "the `datasets` package is not installed: pip install '.[hf]'") from None
    try:
        dataset = datasets.load_dataset(name, config, split=hf_split)
    except Exception as exc:  # the hub raises many types (offline, not found, bad config)
        raise ImportFailed(name, f"could not load from the Hugging Face hub: {exc}") from None
    records = hf_records(
        dataset,
        task=task,
        question_field=question_field,
        options_field=options_field,
        answer_field=answer_field,
        extra_fields=extra_fields,
        split=split,
    )
    return import_task_records(f"hf:{name}", records, benchmark_slug=benchmark_slug)
