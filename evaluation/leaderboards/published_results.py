"""Import published per-phrasing accuracies (the study's result CSVs) as imported model variants.

Format `instructioneval-csv`: files with the columns Model, Dataset, Collection, Type, ID, Shots,
Performance, Metric, Include? (github.com/jiudingsun01/InstructionEval, result_csv/). A phrasing is
Collection/Type/ID. Decisions (README, "Imported results"):
- rows are matched to the imported study tasks (collection.importers.instructions.STUDY_TASKS) and to
  phrasings by external id; BIG-bench's own prompt (BBL/Default) matches the task's benchmark default;
  Default rows are benchmark defaults, in neither the observed nor the unobserved set (as the study);
- a task or phrasing the app does not hold is created as an external one (no instances; no text, so it is
  never scored) so that no published result is dropped;
- Type "Unobserved" rows are crowd phrasings whatever their Collection column says (the study files Alpaca's
  unobserved phrasings under Alpaca); the others belong to their tuning collection;
- non-numeric Performance, Include? false, and few-shot rows are counted in the report and skipped;
- the whole import is one transaction: a malformed file changes nothing.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from django.db import transaction
from django.utils.text import slugify

from collection.importers.base import ImportFailed, ImportReport, benchmark_upsert, limited, read_text
from collection.importers.bigbench import DEFAULT_SOURCE
from collection.importers.instructions import STUDY_TASKS
from collection.models import Collection, Instruction, InstructionRevision, Task, phrasing_key
from evaluation.leaderboards.aggregates import aggregates_refresh_many
from evaluation.ml.families import CAUSAL, SEQ2SEQ
from evaluation.models import LanguageModel, ModelVariant, PhrasingResult, ResultSource, VariantKind

COLUMNS = ["Model", "Dataset", "Collection", "Type", "ID", "Shots", "Performance", "Metric", "Include?"]
SOURCE = "InstructionEval published results (github.com/jiudingsun01/InstructionEval, result_csv)"
COLLECTIONS = {"FLAN": "flan", "NIV2": "niv2", "T0": "t0", "Alpaca": "alpaca"}
BENCHMARK_NAMES = {"mmlu": "MMLU", "bigbench-lite": "BIG-bench Lite"}
# What each study model was tuned on, per the study (observed = these collections' phrasings).
TUNED_ON = {"flan-t5": ["flan", "niv2", "t0"], "t0": ["flan", "niv2", "t0"], "alpaca": ["alpaca"]}
# Each study model's family (evaluation/ml/families.py); a model the study does not name counts as seq2seq.
FAMILY = {"flan-t5": SEQ2SEQ.name, "t0": SEQ2SEQ.name, "alpaca": CAUSAL.name}
MODEL_NAMES = {"T0++": "t0pp"}


def import_results(directory: Path, *, fmt: str = "instructioneval-csv") -> ImportReport:
    if fmt != "instructioneval-csv":
        raise ImportFailed(directory, f"unknown format '{fmt}'; the only one is instructioneval-csv")
    files = sorted(directory.rglob("*.csv")) if directory.is_dir() else [directory]
    if not files:
        raise ImportFailed(directory, "no .csv files here")
    rows = [row for path in files for row in _read(path)]
    report = ImportReport()
    touched: set[tuple[int, int]] = set()
    seen: dict[tuple[int, int], str] = {}
    with transaction.atomic():
        for where, row in rows:
            _import_row(where, row, report, touched, seen)
        aggregates_refresh_many(touched)
    report.add("model variants with results", len({variant for variant, _ in touched}))
    return report


def _read(path: Path) -> list[tuple[str, dict]]:
    reader = csv.DictReader(io.StringIO(read_text(path)))
    if reader.fieldnames is None or [f.strip() for f in reader.fieldnames] != COLUMNS:
        raise ImportFailed(path, f"expected the columns {', '.join(COLUMNS)}; found {reader.fieldnames}")
    rows = []
    try:
        for row in limited(path, reader):
            if None in row or None in row.values():
                raise ImportFailed(
                    path,
                    f"line {reader.line_num}: expected {len(COLUMNS)} values, one per column (is the row cut short?)",
                )
            rows.append((f"{path.name} line {reader.line_num}", row))
    except csv.Error as exc:
        raise ImportFailed(path, f"line {reader.line_num}: malformed CSV ({exc})") from None
    return rows


def _import_row(where: str, row: dict, report: ImportReport, touched: set, seen: dict) -> None:
    if row["Include?"].strip().lower() != "true":
        report.add("rows marked not included (skipped)")
        return
    if row["Shots"].strip() != "0":
        report.add("few-shot rows (skipped; leaderboards are zero-shot)")
        return
    try:
        accuracy = float(row["Performance"])
    except ValueError:
        report.add("rows with a non-numeric Performance (skipped)")
        report.notes.append(f"{where}: Performance {row['Performance']!r} is not a number; skipped")
        return
    if not 0 <= accuracy <= 1:
        raise ImportFailed(where, f"Performance {accuracy} is not an accuracy in [0, 1]")
    if row["Dataset"] not in STUDY_TASKS:
        raise ImportFailed(
            where, f"unknown dataset '{row['Dataset']}'; known: {', '.join(sorted(STUDY_TASKS))}"
        )
    task = _task(row["Dataset"], report)
    revision = _revision(task, row, report)
    variant = _variant(row["Model"], report)
    key = (variant.id, revision.id)
    if key in seen:
        report.add("duplicate rows (the later one is kept)")
        report.notes.append(
            f"{where} repeats {seen[key]} ({row['Model']}, {row['Collection']}/{row['Type']}/{row['ID']})"
        )
    seen[key] = where
    _, created = PhrasingResult.objects.update_or_create(
        variant=variant,
        revision=revision,
        defaults={
            "task": task,
            "accuracy": accuracy,
            "n_correct": None,
            "n_total": None,
            "complete": True,
            "source": ResultSource.IMPORTED,
            "provenance": f"{SOURCE}: {where}",
        },
    )
    report.add("results imported" if created else "results updated")
    touched.add((variant.id, task.id))


def _task(dataset: str, report: ImportReport) -> Task:
    benchmark_slug, task_slug = STUDY_TASKS[dataset]
    task = Task.objects.filter(benchmark__slug=benchmark_slug, slug=task_slug).first()
    if task is not None:
        return task
    benchmark, _ = benchmark_upsert(slug=benchmark_slug, name=BENCHMARK_NAMES[benchmark_slug])
    report.add("external tasks created (no instances)")
    return Task.objects.create(
        benchmark=benchmark,
        slug=task_slug,
        name=dataset.replace("_", " "),
        kind=Task.Kind.MULTIPLE_CHOICE,
        answer_format=Task.AnswerFormat.LETTER,
        source=f"{SOURCE} (results only: import the task's data to score it here)",
        external_id=dataset,
    )


def _revision(task: Task, row: dict, report: ImportReport) -> InstructionRevision:
    external_id = f"{row['Collection']}/{row['Type']}/{row['ID']}"
    instruction = Instruction.objects.filter(task=task, external_id=external_id).first()
    if instruction is None and row["Collection"] == "BBL" and row["Type"] == "Default":
        # BIG-bench's own prompt is the task's default from import_bigbench (Alpaca/Default is another).
        instruction = Instruction.objects.filter(
            task=task, source=DEFAULT_SOURCE, external_id="default"
        ).first()
    if instruction is None:
        if row["Type"] == "Unobserved":
            slug = "crowd"
        elif row["Type"] == "Default":
            slug = "benchmark-default"
        else:
            slug = COLLECTIONS.get(row["Collection"], "crowd")
        # The result files carry no text; this placeholder revision gives the result something to belong to.
        placeholder = f"[{external_id}: text not published with the results]"
        instruction = Instruction.objects.create(
            task=task,
            collection=Collection.objects.get(slug=slug),
            source=SOURCE,
            external_id=external_id,
            text_available=False,
            status=Instruction.Status.APPROVED,
            stable_key=phrasing_key(
                benchmark_slug=task.benchmark.slug, task_slug=task.slug, template=placeholder
            ),
        )
        revision = InstructionRevision.objects.create(instruction=instruction, number=1, template=placeholder)
        instruction.current_revision = revision
        instruction.save(update_fields=["current_revision"])
        report.add("external phrasings created (no text)")
    return instruction.current_revision


def _variant(model_name: str, report: ImportReport) -> ModelVariant:
    name = MODEL_NAMES.get(model_name, slugify(model_name))
    family_key = next((key for key in TUNED_ON if name.startswith(key)), None)
    model, created = LanguageModel.objects.get_or_create(
        name=name,
        defaults={
            "description": f"{model_name}, as evaluated in Sun, Shaib & Wallace (ICLR 2024).",
            "source": f"published results only ({model_name})",
            "family": FAMILY.get(family_key, SEQ2SEQ.name),
            "is_active": False,  # nothing to load: this row only carries published numbers
        },
    )
    if created:
        model.tuned_on.set(Collection.objects.filter(slug__in=TUNED_ON.get(family_key, [])))
        report.add("models created (imported)")
    variant, _ = ModelVariant.objects.get_or_create(
        model=model, kind=VariantKind.IMPORTED, defaults={"provenance": SOURCE}
    )
    return variant
