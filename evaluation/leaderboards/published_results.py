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
from django.utils import timezone
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
    # (variant id, revision id) -> the row's result and where it came from; a later row replaces an earlier.
    results: dict[tuple[int, int], tuple[PhrasingResult, str]] = {}
    held = _Held()
    with transaction.atomic():
        stored = sum(_import_row(where, row, report, results, held) for where, row in rows)
        created = _write([result for result, _ in results.values()])
        # Counted per row, as a row at a time would: a repeated row updates the result its first one made.
        for counted, n in (("results imported", created), ("results updated", stored - created)):
            if n:
                report.add(counted, n)
        touched = {(result.variant_id, result.task_id) for result, _ in results.values()}
        aggregates_refresh_many(touched)
    report.add("model variants with results", len({variant for variant, _ in touched}))
    return report


class _Held(dict):
    """What the import has looked up or created already (tasks, phrasings, variants), so that each is read once
    per import rather than once per row: a file names the same few of each thousands of times."""

    def get_or(self, key, make):
        if key not in self:
            self[key] = make()
        return self[key]


# What an import sets on a result it already holds (as update_or_create's defaults did, and auto_now's field).
UPDATED_FIELDS = [
    "task",
    "accuracy",
    "n_correct",
    "n_total",
    "complete",
    "source",
    "provenance",
    "updated_at",
]


def _write(results: list[PhrasingResult]) -> int:
    """Store the rows' results: new ones inserted, those already held updated, in a few statements. Returns how
    many were new."""
    existing = {
        (variant_id, revision_id): result_id
        for variant_id, revision_id, result_id in PhrasingResult.objects.filter(
            variant_id__in={r.variant_id for r in results}
        ).values_list("variant_id", "revision_id", "id")
    }
    now = timezone.now()
    new, old = [], []
    for result in results:
        result.id = existing.get((result.variant_id, result.revision_id))
        result.updated_at = now  # auto_now: bulk_update would leave it
        (old if result.id else new).append(result)
    PhrasingResult.objects.bulk_create(new, batch_size=1000)
    PhrasingResult.objects.bulk_update(old, UPDATED_FIELDS, batch_size=1000)
    return len(new)


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


def _import_row(where: str, row: dict, report: ImportReport, results: dict, held: _Held) -> bool:
    """Read one row into `results`; False when it is skipped."""
    if row["Include?"].strip().lower() != "true":
        report.add("rows marked not included (skipped)")
        return False
    if row["Shots"].strip() != "0":
        report.add("few-shot rows (skipped; leaderboards are zero-shot)")
        return False
    try:
        accuracy = float(row["Performance"])
    except ValueError:
        report.add("rows with a non-numeric Performance (skipped)")
        report.notes.append(f"{where}: Performance {row['Performance']!r} is not a number; skipped")
        return False
    if not 0 <= accuracy <= 1:
        raise ImportFailed(where, f"Performance {accuracy} is not an accuracy in [0, 1]")
    if row["Dataset"] not in STUDY_TASKS:
        raise ImportFailed(
            where, f"unknown dataset '{row['Dataset']}'; known: {', '.join(sorted(STUDY_TASKS))}"
        )
    task = held.get_or(("task", row["Dataset"]), lambda: _task(row["Dataset"], report))
    phrasing = (task.id, row["Collection"], row["Type"], row["ID"])
    revision = held.get_or(("revision", *phrasing), lambda: _revision(task, row, report))
    variant = held.get_or(("variant", row["Model"]), lambda: _variant(row["Model"], report))
    key = (variant.id, revision.id)
    if key in results:
        report.add("duplicate rows (the later one is kept)")
        report.notes.append(
            f"{where} repeats {results[key][1]} ({row['Model']}, {row['Collection']}/{row['Type']}/{row['ID']})"
        )
    results[key] = (
        PhrasingResult(
            variant=variant,
            revision=revision,
            task=task,
            accuracy=accuracy,
            n_correct=None,
            n_total=None,
            complete=True,
            source=ResultSource.IMPORTED,
            provenance=f"{SOURCE}: {where}",
        ),
        where,
    )
    return True


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
