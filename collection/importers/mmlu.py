"""MMLU: one task per subject CSV, all under one pooled MMLU task, as the study pooled them.

Each CSV has no header; its columns are question, A, B, C, D and the answer letter. The gold option is the
answer letter's position. (The study's code looked the answer up by text, which picks the wrong option in
one high_school_macroeconomics row whose options A and D are identical; we follow the letter.)
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from django.db import transaction

from collection.importers.base import (
    ImportFailed,
    ImportReport,
    benchmark_upsert,
    limited,
    read_text,
    task_upsert,
)
from collection.models import Instance, Task
from collection.services import instances_upsert

LETTERS = ["A", "B", "C", "D"]
POOLED_SLUG = "mmlu"


def mmlu_pooled_task_fields() -> dict:
    return {
        "kind": Task.Kind.MULTIPLE_CHOICE,
        "answer_format": Task.AnswerFormat.LETTER,
        "input_fields": ["question"],
        "required_fields": ["question"],
        "label_space": LETTERS,
        "max_options": 4,
    }


def read_subject(path: Path) -> list[dict]:
    """Parse one subject CSV into instance rows, refusing the whole file at its first bad line."""
    subject = path.stem.removesuffix("_test")
    rows = []
    reader = csv.reader(io.StringIO(read_text(path), newline=""))
    try:
        for index, record in enumerate(limited(path, reader)):
            if len(record) != 6:
                raise ImportFailed(
                    path,
                    f"line {reader.line_num}: expected 6 columns (question, A, B, C, D, answer), "
                    f"found {len(record)}",
                )
            question, *options, answer = record
            answer = answer.strip().upper()
            if answer not in LETTERS:
                raise ImportFailed(
                    path, f"line {reader.line_num}: answer {record[5]!r} is not one of A, B, C, D"
                )
            if not question.strip():
                raise ImportFailed(path, f"line {reader.line_num}: the question is empty")
            rows.append(
                {
                    "source_id": f"{subject}/test/{index}",
                    "split": Instance.Split.EVAL,
                    "inputs": {"question": question},
                    "options": options,
                    "gold": LETTERS.index(answer),
                }
            )
    except csv.Error as exc:
        raise ImportFailed(path, f"line {reader.line_num}: malformed CSV ({exc})") from None
    if not rows:
        raise ImportFailed(path, "the file has no questions")
    return rows


def import_mmlu(directory: Path) -> ImportReport:
    if not directory.is_dir():
        raise ImportFailed(directory, "not a directory")
    files = sorted(directory.glob("*.csv"))
    if not files:
        raise ImportFailed(directory, "no CSV files found (expected <subject>_test.csv files)")
    # Parse everything before writing anything, so a bad file leaves the database as it was.
    subjects = {path.stem.removesuffix("_test"): read_subject(path) for path in files}

    report = ImportReport()
    with transaction.atomic():
        benchmark, created = benchmark_upsert(
            slug="mmlu",
            name="MMLU",
            description="Massive Multitask Language Understanding (Hendrycks et al., 2021): 57 subjects, "
            "four-option multiple choice. The study pools all subjects as one task.",
            source="https://github.com/hendrycks/test (test split)",
        )
        report.add("benchmarks created" if created else "benchmarks unchanged")
        pooled = task_upsert(
            benchmark=benchmark,
            slug=POOLED_SLUG,
            report=report,
            name="MMLU (57 subjects pooled)",
            description="All MMLU subjects pooled, as in the study. Phrasings attach here.",
            parent=None,
            **mmlu_pooled_task_fields(),
        )
        for subject, rows in subjects.items():
            task = task_upsert(
                benchmark=benchmark,
                slug=subject,
                report=report,
                name=subject.replace("_", " ").title(),
                parent=pooled,
                external_id=subject,
                **mmlu_pooled_task_fields(),
            )
            report.add_instances(instances_upsert(task=task, rows=rows))
    return report
