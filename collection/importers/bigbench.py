"""BIG-bench tasks from task.json files with `target_scores` (multiple choice), subtasks included.

A path is a task folder (or its task.json). Subfolders holding their own task.json become subtasks under
the task. Options keep file order; the gold option is the one with the highest target score. Tasks whose
examples all offer the same label words (yes/no, same/different) are answered with those words; the
rest are answered with letters, as the study scored them. Each top-level task, and each subtask the study
scored on its own, also gets BIG-bench's own prompt (task_prefix, input and output prefixes) as its
benchmark-default phrasing.
"""

from __future__ import annotations

import json
import random
import string
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction

from collection.importers.base import (
    ImportFailed,
    ImportReport,
    benchmark_upsert,
    collection_get,
    limited,
    read_text,
    task_upsert,
)
from collection.importers.bigbench_fields import FieldSpec, spec_for
from collection.models import Benchmark, Instance, Instruction, Task
from collection.services import instances_upsert, instruction_create, instruction_revise
from collection.templating import literal

BENCHMARK_SLUG = "bigbench-lite"
# Subtasks the study scored on their own (logical_deduction: five objects; strange_stories: the yes/no
# questions): each gets BIG-bench's prompt as its own default, besides the top-level task's.
STUDY_SUBTASKS = ("logical_deduction-five_objects", "strange_stories-boolean")
DEFAULT_SOURCE = "BIG-bench task.json"
LETTERS = string.ascii_uppercase


@dataclass
class TaskFile:
    path: Path
    slug: str
    data: dict
    rows: list[dict]
    unmatched: int = 0
    subtasks: list[TaskFile] = field(default_factory=list)


def read_task_file(path: Path, slug: str, spec: FieldSpec, id_prefix: str) -> TaskFile:
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise ImportFailed(
            path, f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None
    if not isinstance(data, dict):
        raise ImportFailed(path, "expected a JSON object with 'name' and 'examples'")
    examples = data.get("examples", [])
    if not isinstance(examples, list):
        raise ImportFailed(path, "'examples' must be a list")
    task_file = TaskFile(path=path, slug=slug, data=data, rows=[])
    for index, example in enumerate(limited(path, examples)):
        task_file.rows.append(_example_row(path, index, example, spec, id_prefix, task_file))
    return task_file


def _example_row(
    path: Path, index: int, example, spec: FieldSpec, id_prefix: str, task_file: TaskFile
) -> dict:
    where = f"example {index}"
    if not isinstance(example, dict) or not isinstance(example.get("input"), str):
        raise ImportFailed(path, f"{where} has no 'input' text")
    scores = example.get("target_scores")
    if not isinstance(scores, dict) or len(scores) < 2:
        raise ImportFailed(
            path,
            f"{where} has no 'target_scores' with two or more options; only multiple-choice tasks import",
        )
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in scores.values()):
        raise ImportFailed(path, f"{where}: target scores must be numbers")
    best = max(scores.values())
    winners = [option for option, score in scores.items() if score == best]
    if len(winners) != 1:
        raise ImportFailed(
            path, f"{where}: {len(winners)} options share the top score; the gold option is unclear"
        )
    answer = winners[0]
    source_id = f"{id_prefix}{index}"
    options = list(spec.fixed_options) or list(scores)
    if answer not in options:
        raise ImportFailed(path, f"{where}: answer {answer!r} is not one of the options {options}")
    inputs, matched = spec.split(example["input"])
    task_file.unmatched += not matched
    return {
        "source_id": source_id,
        "split": Instance.Split.EVAL,
        "inputs": inputs,
        "options": options,
        "gold": options.index(answer),
    }


def read_task_dir(path: Path) -> TaskFile:
    directory = path.parent if path.name == "task.json" else path
    root_file = directory / "task.json"
    if not root_file.is_file():
        raise ImportFailed(path, "no task.json here")
    spec = spec_for(directory.name)
    root = read_task_file(root_file, directory.name, spec, "")
    for sub in sorted(p for p in directory.iterdir() if (p / "task.json").is_file()):
        root.subtasks.append(
            read_task_file(sub / "task.json", f"{directory.name}-{sub.name}", spec, f"{sub.name}/")
        )
    for task_file in [root, *root.subtasks]:
        if not task_file.rows and not (task_file is root and root.subtasks):
            raise ImportFailed(task_file.path, "the task has no examples")
    if spec.shuffle_options:
        study_shuffle(root, spec)
    return root


def study_shuffle(root: TaskFile, spec: FieldSpec) -> None:
    """Shuffle every example's options with the study's one stream (see FieldSpec.shuffle_options): the
    same order on every import and machine, and the study's order wherever its folders are all here."""
    rank = {name: i for i, name in enumerate(spec.shuffle_folders)}
    subtasks = sorted(root.subtasks, key=lambda sub: (rank.get(sub.path.parent.name, len(rank)), sub.slug))
    stream = random.Random(42)
    for task_file in [root, *subtasks]:
        for row in task_file.rows:
            answer = row["options"][row["gold"]]
            stream.shuffle(row["options"])
            row["gold"] = row["options"].index(answer)


def answer_space(rows: list[dict], spec: FieldSpec) -> tuple[str, str, list[str]]:
    """(kind, answer format, label space) for a task's rows; see the module docstring."""
    option_sets = {frozenset(row["options"]) for row in rows}
    if len(option_sets) == 1 and not spec.fixed_options and not spec.shuffle_options:
        labels = list(rows[0]["options"])
        kind = Task.Kind.BINARY if len(labels) == 2 else Task.Kind.CLASSIFICATION
        return kind, Task.AnswerFormat.OPTION_TEXT, labels
    width = max(len(row["options"]) for row in rows)
    return Task.Kind.MULTIPLE_CHOICE, Task.AnswerFormat.LETTER, list(LETTERS[:width])


def canonical_rows(rows: list[dict], answer_format: str, labels: list[str]) -> list[dict]:
    """For label-word tasks, put every instance's options in label-space order (yes/no, not no/yes)."""
    if answer_format != Task.AnswerFormat.OPTION_TEXT:
        return rows
    return [row | {"options": labels, "gold": labels.index(row["options"][row["gold"]])} for row in rows]


def prompt_parts(task_file: TaskFile, parent: TaskFile | None = None) -> dict[str, str]:
    """BIG-bench's prompt parts, read from the task's own file (then, for a subtask, its parent's), as the
    study reads them: a top-level task does not take its subtasks' prefixes."""
    sources = [task_file.data] + ([parent.data] if parent else [])

    def first(key: str, fallback: str) -> str:
        for data in sources:
            if isinstance(data.get(key), str):
                return data[key]
        return fallback

    return {
        "instruction": first("task_prefix", "") or first("description", ""),
        "input_prefix": first("example_input_prefix", "\n"),
        "choice_prefix": first("choice_prefix", ""),
        "output_prefix": first("example_output_prefix", ""),
    }


def default_template(parts: dict[str, str], answer_format: str) -> str:
    """BIG-bench's own prompt as a template: instruction, input prefix, the input, options, output prefix.

    {input} is the example's whole input, as BIG-bench builds its prompt (where our field split cuts
    {question} down, the puzzle, the story or the concept would be missing)."""
    head = f"{literal(parts['instruction'])} {literal(parts['input_prefix'])}{{input}}"
    tail = literal(parts["output_prefix"])
    if answer_format == Task.AnswerFormat.OPTION_TEXT:
        return head + tail
    return head + literal(parts["choice_prefix"]) + "\n{options:parens}" + tail


def alpaca_default_template(parts: dict[str, str], input_marker: str) -> str:
    """The study's Preprocessor.alpaca_default on a label-word task: the instruction, Alpaca's input marker,
    then the answer cue both before and after the question, the options lettered in between
    ("\nAnswer: " + " " + input + " " + choice prefix + "\nA. same\nB. different" + "\nAnswer: ")."""
    cue = literal(parts["output_prefix"])
    return (
        literal(parts["instruction"])
        + input_marker
        + f"{cue} {{input}} {literal(parts['choice_prefix'])}\n{{options:letters}}{cue}"
    )


def import_bigbench(paths: list[Path]) -> ImportReport:
    # Parse everything before writing anything, so a bad file leaves the database as it was.
    roots = [read_task_dir(path) for path in paths]
    report = ImportReport()
    with transaction.atomic():
        benchmark, created = benchmark_upsert(
            slug=BENCHMARK_SLUG,
            name="BIG-bench Lite",
            description="BIG-bench Lite tasks (Srivastava et al., 2023), multiple-choice subset used by the study.",
            source="https://github.com/google/BIG-bench",
        )
        report.add("benchmarks created" if created else "benchmarks unchanged")
        for root in roots:
            _import_tree(benchmark, root, report)
    return report


def _import_tree(benchmark: Benchmark, root: TaskFile, report: ImportReport) -> None:
    spec = spec_for(root.path.parent.name)
    all_rows = root.rows + [row for sub in root.subtasks for row in sub.rows]
    kind, answer_format, labels = answer_space(all_rows, spec)
    common = {
        "input_fields": spec.input_fields(),
        "required_fields": [],
        "source": DEFAULT_SOURCE,
    }
    parts = prompt_parts(root)
    parent = _task_from_file(
        benchmark, root, None, report, common | {"prompt_parts": parts}, kind, answer_format, labels
    )
    _default_upsert(parent, default_template(parts, answer_format), root.path, report)
    for sub in root.subtasks:
        sub_kind, sub_format, sub_labels = answer_space(sub.rows, spec)
        sub_parts = prompt_parts(sub, parent=root)
        task = _task_from_file(
            benchmark,
            sub,
            parent,
            report,
            common | {"prompt_parts": sub_parts},
            sub_kind,
            sub_format,
            sub_labels,
        )
        if task.slug in STUDY_SUBTASKS:
            _default_upsert(task, default_template(sub_parts, sub_format), sub.path, report)


def _default_upsert(task: Task, template: str, path: Path, report: ImportReport) -> None:
    """BIG-bench's own prompt as the task's benchmark-default phrasing, created or brought up to date."""
    existing = Instruction.objects.filter(task=task, source=DEFAULT_SOURCE, external_id="default").first()
    if existing is None:
        instruction_create(
            task=task,
            template=template,
            collection=collection_get("benchmark-default", path),
            source=DEFAULT_SOURCE,
            external_id="default",
            status=Instruction.Status.APPROVED,
        )
        report.add("default phrasings created")
    elif existing.template != template:
        instruction_revise(instruction=existing, template=template)
        report.add("default phrasings revised")
    else:
        report.add("default phrasings unchanged")


def _task_from_file(benchmark, task_file, parent, report, common, kind, answer_format, labels) -> Task:
    data = task_file.data
    rows = canonical_rows(task_file.rows, answer_format, labels)
    task = task_upsert(
        benchmark=benchmark,
        slug=task_file.slug,
        report=report,
        name=str(data.get("name") or task_file.slug),
        description=str(data.get("description") or ""),
        parent=parent,
        kind=kind,
        answer_format=answer_format,
        label_space=labels,
        max_options=max((len(row["options"]) for row in rows), default=len(labels)),
        external_id=task_file.slug,
        **common,
    )
    report.add_instances(instances_upsert(task=task, rows=rows))
    if task_file.unmatched:
        report.notes.append(
            f"{task.slug}: {task_file.unmatched} of {len(rows)} inputs did not split into "
            f"{', '.join(common['input_fields'])}; they keep the whole input as {{question}}"
        )
    return task
