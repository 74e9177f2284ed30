"""Phrasings from files: the study's extracted instructions, and generic JSONL or CSV.

InstructionEval (`--format instructioneval`) reads both extracted files of the study (shared/data/
paper_instructions, see its SOURCE.txt); each entry's shape says which kind it is.
- Unobserved (human-written) entries carry `strings`: every BBL/MMLU entry written as a template
  (`input_template`, or `input_text(formatted)` for the few written as f-strings) goes onto the task it was
  written for, approved, in the crowd collection (practitioners wrote them; no model was tuned on them).
  Where the study's `{question}` is not ours, the template is written with our field (STUDY_FIELDS).
  `BBL/Default` is skipped: import_bigbench creates BIG-bench's own prompt as the task's default.
- Alpaca entries (Alpaca/Unobserved, Alpaca/Default) become phrasings for Alpaca-format models only
  (prompt_format "alpaca"): the instruction, Alpaca's "### Input:" marker, then the input block the study
  builds (Alpaca/Default on a label-word task: the study's alpaca_default layout, from the task's BIG-bench
  prompt parts). Alpaca/Default goes into the benchmark-default collection, the rest into the crowd collection.
- Observed entries carry `collection` and `template`: the instruction-tuning collections' templates (FLAN,
  NIV2, T0, Alpaca's QA/BC) already written in our placeholder language, with the label words the study
  scores and what the extraction verified. They go into the named collection (FLAN -> flan, NIV2 -> niv2,
  T0 -> t0, Alpaca -> alpaca), approved; Alpaca's are for Alpaca-format models only. A phrasing answers as
  the study scores it: its label words (NIV2's MathQA a, b, ... on letter tasks too) or each instance's
  option texts (T0's QA). Skipped, and reported by id with the reason: entries the study's own code cannot
  build (T0/BC/1-8, T0/Classification/3), entries whose task is not imported, and entries whose prompt
  cannot be written as a template here.
Re-importing after a fidelity fix gives a phrasing whose rendering changed a new revision (its old results
stay with the old revision).
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

from collection.answers import answers_for
from collection.importers.base import (
    ImportFailed,
    ImportReport,
    collection_get,
    decode_text,
    limited,
    read_jsonl,
    read_text,
)
from collection.importers.bigbench import alpaca_default_template
from collection.models import Instruction, InstructionRevision, Task, normalised_key
from collection.services import (
    embeddings_batched,
    instruction_create,
    instruction_revise,
    uploads_check,
    uploads_lock,
)
from collection.templating import literal
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
    # Alpaca-format templates (configs/BBH/*.py, their alpaca_unobservedN label spaces).
    ("Play_Dialog", "Alpaca/Unobserved/2"): ["yes", "no"],
    ("Play_Dialog", "Alpaca/Unobserved/9"): ["Yes", "No"],
    ("Play_Dialog", "Alpaca/Unobserved/10"): ["A", "B"],
    **{("StrategyQA", f"Alpaca/Unobserved/{n}"): ["yes", "no"] for n in (1, 3, 6, 7, 9)},
    ("Winowhy", "Alpaca/Unobserved/4"): ["Yes", "No"],
    ("Winowhy", "Alpaca/Unobserved/6"): ["Yes", "No"],
}

TEMPLATE_KEYS = ("input_template", "input_text(formatted)")

# Observed entries: the study's instruction-tuning collections (an id's first part), as our collections' slugs.
STUDY_COLLECTIONS = {"FLAN": "flan", "NIV2": "niv2", "T0": "t0", "Alpaca": "alpaca"}
OBSERVED_ID = re.compile(r"(?P<collection>FLAN|NIV2|T0|Alpaca)/(QA|BC|Classification)/[0-9]+")

# Why an observed entry is skipped, checked in this order.
SKIP_STUDY_FAILS = "the study's own code cannot build its prompt (its scores come from code not published)"
SKIP_NO_TASK = "its task is not imported (import the task, then run this again)"
SKIP_PROMPT = "its prompt cannot be written as a template here (see the file's not_expressible)"
SKIP_UNVERIFIED = "the file does not say what the study scores for it"
SKIP_NO_PROMPT_PARTS = (
    "its task has no BIG-bench prompt parts stored (imported before they were kept: run import_bigbench "
    "again, then this)"
)

# Study templates whose {question} is not ours: the study's field split differs for these ids.
# - strange_stories BBL/Unobserved: the study's {question} is the whole input, story included (our
#   {question} is the final "Q: ..." line).
# - novel_concepts BBL/Unobserved 1-6, 8, 10: the study drops "What do the following have in common? "
#   (these templates ask it in their own words), which our {things} does.
STUDY_FIELDS = (
    ("Strange_Stories", re.compile(r"BBL/Unobserved/\d+"), "input"),
    ("Novel_Concepts", re.compile(r"BBL/Unobserved/([1-6]|8|10)"), "things"),
)
QUESTION = re.compile(r"(?<!\{)\{question\}(?!\})")
PLACEHOLDER = re.compile(r"(?<!\{)\{[A-Za-z_]\w*(:\w+)?\}(?!\})")

# Play_Dialog NIV2/BC: NIV2's mapping writes "Paragraph- <play> Question:" with the play's first line
# without its newline, which is our {paragraph}; the file gives the template with {play} as closest_template.
STUDY_PROMPT_FIXES = {("Play_Dialog", "{play} Question:"): "{paragraph} Question:"}

# Alpaca's with-input layout (the study's wrapper, around instruction + this + input): see
# evaluation/ml/prompts.py, which picks the with-input header when a prompt has it.
ALPACA_INPUT = "\n\n### Input:\n"


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
    answers: str | None = None  # None: label words when it has any, else the task's answers
    prompt_format: str = Instruction.Format.ANY
    # The study's rows are the study's text: a phrasing imported earlier with another rendering (before a
    # fidelity fix) gets this one as a new revision. Generic rows never overwrite.
    revise: bool = False


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
                report.skipped.setdefault(result, {}).setdefault(key, []).append(item["id"])
            else:
                rows.append(result)
    report.notes += _skip_notes(report.skipped)
    return rows


def _unobserved_rows(
    key: str, task: Task | None, instructions: list, source: str, report: ImportReport
) -> list[PhrasingRow]:
    """Rows of the human-written entries (BBL/MMLU/Unobserved), and of the Alpaca-format ones
    (Alpaca/Unobserved, Alpaca/Default) for Alpaca-format models; BBL/Default is skipped (import_bigbench
    creates BIG-bench's prompt as the task's default)."""
    studied = [item for item in instructions if isinstance(item, dict) and isinstance(item.get("id"), str)]
    report.add("entries that are not templates (skipped)", len(instructions) - len(studied))
    rows, not_templates = [], 0
    for item in studied:
        study_id = item["id"]
        if study_id.startswith("Alpaca/"):
            result = _alpaca_row(key, task, item, source) if task is not None else SKIP_NO_TASK
        elif (template := _template_of(item)) is None:
            not_templates += 1
            continue
        elif task is None:
            result = SKIP_NO_TASK
        else:
            result = PhrasingRow(
                where=f"{key} {study_id}",
                task=task,
                template=_study_fields(key, study_id, template),
                collection_slug="crowd",
                author=None,
                source=source,
                external_id=study_id,
                labels=STUDY_LABELS.get((key, study_id)),
                group="human-written",
                revise=True,
            )
        if isinstance(result, str):
            report.add(f"{study_id.rsplit('/', 1)[0]}: skipped, {result}")
            report.skipped.setdefault(result, {}).setdefault(key, []).append(study_id)
        else:
            rows.append(result)
    report.add("entries that are not templates (skipped)", not_templates)
    return rows


def _study_fields(key: str, study_id: str, template: str) -> str:
    """The template with the study's {question} written as our field where the two differ (STUDY_FIELDS)."""
    for study_task, ids, field_name in STUDY_FIELDS:
        if study_task == key and ids.fullmatch(study_id):
            return QUESTION.sub("{" + field_name + "}", template)
    return template


def _alpaca_row(key: str, task: Task, item: dict, source: str) -> PhrasingRow | str:
    """An Alpaca-format entry as a phrasing for Alpaca-format models: the instruction, Alpaca's input
    marker, then the input block the study builds (its multiple-choice block, the entry's own input
    template, or the whole input)."""
    study_id = item["id"]
    whole = "{input}" if "input" in task.input_fields else "{question}"
    strings = item.get("strings") if isinstance(item.get("strings"), dict) else {}
    if item.get("function") == "alpaca_default":
        # BIG-bench's prompt in Alpaca's layout, built from the task's prompt parts (import_bigbench).
        if not task.prompt_parts:
            return SKIP_NO_PROMPT_PARTS
        template = alpaca_default_template(task.prompt_parts, ALPACA_INPUT)
    else:
        if item.get("via") == "alpaca_multiple_choice":
            # A plain string in the study's list (its other entries are templates already).
            instruction = item.get("alpaca_instruction")
            instruction = literal(instruction) if isinstance(instruction, str) else None
            block = f"Question: {whole}\n{{options:parens}}"
        else:
            instruction = strings.get("instruction") or strings.get("input_text")
            block = strings.get("inputs") or strings.get("inputs(formatted)")
            if block is None and not (isinstance(instruction, str) and PLACEHOLDER.search(instruction)):
                block = whole  # a bare instruction: the study gives the whole input as Alpaca's input
        if not isinstance(instruction, str) or not isinstance(block, str | None):
            return "the entry has no instruction text (the study's list has none at its index)"
        # An instruction that shows the instance itself has no input block.
        template = instruction if block is None else instruction + ALPACA_INPUT + block
    default = study_id.startswith("Alpaca/Default/")
    return PhrasingRow(
        where=f"{key} {study_id}",
        task=task,
        template=template,
        collection_slug="benchmark-default" if default else "crowd",
        author=None,
        source=source,
        external_id=study_id,
        labels=STUDY_LABELS.get((key, study_id)),
        group="Alpaca default" if default else "Alpaca unobserved",
        prompt_format=Instruction.Format.ALPACA,
        revise=True,
    )


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
    if template is None or "prompt" in what:
        template = _prompt_fixed(key, item.get("closest_template"))
        if template is None:
            return SKIP_PROMPT
    scored = item.get("scored_answers")
    if not isinstance(scored, dict):
        raise ImportFailed(path, f"{where}: no 'scored_answers' saying what the study scores")
    labels = _observed_labels(path, where, task, item)
    try:
        answers = _observed_answers(
            task, scored, labels, scoring_differs=any(w.startswith("scoring") for w in what)
        )
    except _Unverified:
        return SKIP_UNVERIFIED
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
        answers=answers,
        prompt_format=Instruction.Format.ALPACA if item["collection"] == "Alpaca" else Instruction.Format.ANY,
        revise=True,
    )


def _prompt_fixed(key: str, closest) -> str | None:
    """The file's closest template with a known fix applied (STUDY_PROMPT_FIXES), or None."""
    if not isinstance(closest, str):
        return None
    for (study_task, old), new in STUDY_PROMPT_FIXES.items():
        if study_task == key and old in closest:
            return closest.replace(old, new)
    return None


class _Unverified(Exception):
    """The file does not say what the study scores for an entry (it is skipped with SKIP_UNVERIFIED)."""


def _observed_answers(
    task: Task, scored: dict, labels: list[str] | None, *, scoring_differs: bool
) -> str | None:
    """What the phrasing answers with, as the study scores it (None: the task's own answers). The file says
    whether the app's default (letters on a letter-answered task, label words otherwise) is the study's; where
    not, the study scores either its own label words (NIV2's MathQA a, b, ...) or each instance's option texts
    (T0's QA). Raises _Unverified when the file does not say."""
    if scored.get("same_as_study") is True and not scoring_differs:
        return None
    if task.answer_format != Task.AnswerFormat.LETTER:
        raise _Unverified
    if labels:
        return InstructionRevision.Answers.WORDS
    if "option texts" in str(scored.get("study_label_space", "")):
        return InstructionRevision.Answers.TEXTS
    raise _Unverified


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
        record = {**record, **_texts(path, where, record)}
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


# The text columns of the generic format, with the longest value each may hold (its database column's).
TEXT_COLUMNS = {
    "task": 301,  # benchmark/task: slugs of at most 100 and 200 characters
    "author": 150,
    "collection": 50,
    "source": Instruction._meta.get_field("source").max_length,
    "external_id": Instruction._meta.get_field("external_id").max_length,
}


def _texts(path: Path | str, where: str, record: dict) -> dict:
    """The record's text columns as texts, refused (naming the line) when one is an object, a list or longer
    than its column holds. Numbers are taken as their text (an id of 12 is "12")."""
    texts = {}
    for name, longest in TEXT_COLUMNS.items():
        value = record.get(name)
        if value is None or isinstance(value, str):
            text = value or ""
        elif isinstance(value, int | float) and not isinstance(value, bool):
            text = str(value)
        else:
            raise ImportFailed(path, f"{where}: '{name}' must be text, not {type(value).__name__}")
        if len(text) > longest:
            raise ImportFailed(path, f"{where}: '{name}' is longer than {longest} characters")
        texts[name] = text
    return texts


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
    with transaction.atomic(), embeddings_batched():
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
    with transaction.atomic(), embeddings_batched():
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
    # Ordered by id alone: the model's ordering (task, then the task's benchmark name and slug) joins and sorts
    # every phrasing of the task for each row, which made a 2,000-row upload take minutes.
    found = existing.select_related("current_revision").order_by("id").first()
    if found is not None:
        current = found.current_revision
        same = (current.template, current.labels or None, current.answers) == (
            row.template,
            row.labels,
            answers_for(row.labels, row.answers),
        )
        if same:
            report.add("phrasings unchanged")
            return False
        if not row.revise:
            raise ImportFailed(
                path,
                f"{row.where}: phrasing {row.external_id or found.pk} already exists with different text",
            )
        _revise(path, row, found)
        report.add("phrasings updated to the study's rendering (new revision)")
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
            answers=row.answers,
            prompt_format=row.prompt_format,
            status=status,
        )
    except ApplicationError as exc:
        if isinstance(exc, ImportFailed):
            raise
        raise ImportFailed(path, f"{row.where}: {exc.message}", details=exc.details) from None
    report.add("phrasings created")
    return True


def _revise(path: Path | str, row: PhrasingRow, found: Instruction) -> None:
    try:
        instruction_revise(instruction=found, template=row.template, labels=row.labels, answers=row.answers)
    except ApplicationError as exc:
        raise ImportFailed(path, f"{row.where}: {exc.message}", details=exc.details) from None
