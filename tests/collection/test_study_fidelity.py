"""Fidelity to the study: every prompt, answer set and gold of the study's own sample, rendered here.

shared/data/paper_prompts/study_prompts.sample.jsonl holds what the study's code built (prompt before
truncation, the options it scores, the gold) on 5 instances of each of 1,162 (task, instruction id) pairs of its
main results (its SOURCE.txt says how it was made). We import the study's tasks and phrasings as a user would,
find each entry's phrasing (by external id on the task the study key maps to) and instance (by the study's
source file and index), render it as the scorer does, and compare. Every entry must be exact or explained by a
departure listed in collection/study_departures.py, and every listed departure must still occur, so that each
fix shrinks the list.
"""

from __future__ import annotations

import io
import json
import re
import shutil
from collections import Counter
from pathlib import Path

import pytest
from django.core.management import call_command

from collection import templating
from collection.answers import option_texts
from collection.importers.bigbench import BENCHMARK_SLUG, DEFAULT_SOURCE
from collection.importers.instructions import STUDY_TASKS
from collection.models import Instance, Instruction, Task
from collection.study_departures import DEPARTURES, DIFFERENCES, Departure
from evaluation.ml import prompts

pytestmark = pytest.mark.django_db

SAMPLE = "paper_prompts/study_prompts.sample.jsonl"
INSTRUCTIONS = (
    "paper_instructions/InstructionEval_unobserved_instructions.extracted.json",
    "paper_instructions/InstructionEval_observed_instructions.extracted.json",
)


def read_sample(shared_data: Path) -> list[dict]:
    path = shared_data / SAMPLE
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def import_study(shared_data: Path, tmp_path: Path, entries: list[dict]) -> None:
    """The tasks the sample needs (its MMLU subjects, its BIG-bench task folders), then all study phrasings."""
    subjects = tmp_path / "mmlu"
    subjects.mkdir()
    folders = set()
    for entry in entries:
        source = entry["source"]
        if source["task"] == "mmlu":
            shutil.copy(shared_data / "mmlu" / "test" / source["file"], subjects)
        else:
            folders.add(shared_data / "bigbench_lite_tasks" / source["task"])
    quiet = {"stdout": io.StringIO()}
    call_command("import_mmlu", subjects, **quiet)
    call_command("import_bigbench", *sorted(folders), **quiet)
    for name in INSTRUCTIONS:
        call_command("import_instructions", shared_data / name, "--format", "instructioneval", **quiet)


def instance_key(source: dict) -> tuple[str, str, str]:
    """(benchmark, task slug, source id) of the study's instance, as our importers name them."""
    if source["task"] == "mmlu":
        subject = source["file"].removesuffix("_test.csv")
        return "mmlu", subject, f"{subject}/test/{source['index']}"
    if source["subtask"]:
        return (
            BENCHMARK_SLUG,
            f"{source['task']}-{source['subtask']}",
            f"{source['subtask']}/{source['index']}",
        )
    return BENCHMARK_SLUG, source["task"], str(source["index"])


class Ours:
    """The app's phrasings and instances for the sample, loaded in a few queries and looked up in memory."""

    def __init__(self, entries: list[dict]) -> None:
        keys = {instance_key(entry["source"]) for entry in entries}
        instances = Instance.objects.filter(source_id__in={key[2] for key in keys}).select_related(
            "task__benchmark"
        )
        self.instances = {(i.task.benchmark.slug, i.task.slug, i.source_id): i for i in instances}
        tasks = Task.objects.select_related("benchmark", "parent")
        self.tasks = {(task.benchmark.slug, task.slug): task for task in tasks}
        phrasings = Instruction.objects.filter(status=Instruction.Status.APPROVED).select_related(
            "current_revision", "task"
        )
        self.phrasings = {(p.task_id, p.external_id, p.source == DEFAULT_SOURCE): p for p in phrasings}

    def phrasing(self, entry: dict) -> Instruction | None:
        task = self.tasks.get(STUDY_TASKS[entry["study_task"]])
        if task is None:
            return None
        if entry["type"] != "Default" or entry["collection"] != "BBL":
            return self.phrasings.get((task.pk, entry["instruction_id"], False))
        # BIG-bench's own prompt is the benchmark default of the task, or of its parent (import_bigbench
        # attaches it to the top-level task).
        for candidate in (task, task.parent):
            if candidate is not None and (found := self.phrasings.get((candidate.pk, "default", True))):
                return found
        return None


def differences(entry: dict, ours: Ours) -> tuple[set[str], str]:
    """What differs between the study's entry and ours (a subset of DIFFERENCES), and a one-line example."""
    found = {"truncated"} if entry["study_truncates"] else set()
    phrasing = ours.phrasing(entry)
    if phrasing is None:
        return found | {"no phrasing"}, "no approved phrasing with this id on the task"
    instance = ours.instances.get(instance_key(entry["source"]))
    if instance is None:
        return found | {"no instance"}, f"no instance {instance_key(entry['source'])}"
    if phrasing.task != ours.tasks[STUDY_TASKS[entry["study_task"]]]:
        found.add("instances")
    found_here, example = compare(entry, phrasing, instance)
    # The study's options, in the study's order (the texts are the same), tell an option-order difference
    # from a template difference.
    moved = set()
    options = entry["item_options"]
    if (
        found_here & {"prompt", "gold"}
        and options != instance.options
        and sorted(options) == sorted(instance.options)
    ):
        study_order = Instance(
            inputs=instance.inputs, options=options, gold=options.index(instance.options[instance.gold])
        )
        found_there, _ = compare(entry, phrasing, study_order)
        moved = (found_here - found_there) & {"prompt", "gold"}
    if moved:
        found_here = (found_here - moved) | {"option order"}
    return found | found_here, example


def compare(entry: dict, phrasing: Instruction, instance: Instance) -> tuple[set[str], str]:
    """How our prompt and answers for one instance differ from the study's entry, and an example.

    Answers are compared as the strings scored and the gold string: rank classification scores each option
    on its own, so their order does not matter."""
    revision = phrasing.current_revision
    shared, rest = templating.render_parts(revision.template, instance.inputs, instance.options)
    found = set()
    if entry["wrapper"] == "alpaca":
        # The study scored Alpaca models on Alpaca-format prompts only: compare what the app gives an Alpaca
        # model (its prompt format) and, to tell the wrapper from the phrasing, the text inside the wrapper.
        if "".join(prompts.wrap(shared, rest, "alpaca")) != entry["prompt"]:
            found.add("wrapper")
        inner = STUDY_ALPACA.fullmatch(entry["prompt"])
        study_prompt = inner["text"] if inner else entry["prompt"]
    else:
        study_prompt = entry["prompt"]
    example = ""
    if shared + rest != study_prompt:
        found.add("prompt")
        example = first_difference(shared + rest, study_prompt)
    answers = list(option_texts(phrasing.task, revision, instance))
    if sorted(answers) != sorted(entry["options"]):
        found.add("answers")
    elif answers[instance.gold] != entry["target"]:
        found.add("gold")
    if found & {"answers", "gold"}:
        example = f"ours {answers} gold {answers[instance.gold]!r}; study {entry['options']} gold {entry['target']!r}"
    return found, example


# The study's with-input Alpaca wrapper (SOURCE.txt of the sample; the study adds it in its preprocessors).
STUDY_ALPACA = re.compile(
    re.escape(
        "Below is an instruction that describes a task, paired with an input that provides further context. "
        "Write a response that appropriately completes the request.\n\n### Instruction:\n"
    )
    + r"(?P<text>.*)"
    + re.escape("\n\n### Response:"),
    re.S,
)


def first_difference(ours: str, study: str) -> str:
    at = next((i for i, (a, b) in enumerate(zip(ours, study)) if a != b), min(len(ours), len(study)))
    return f"at {at}: ours {ours[max(0, at - 30) : at + 40]!r} study {study[max(0, at - 30) : at + 40]!r}"


def explaining(entry: dict) -> list[Departure]:
    return [d for d in DEPARTURES if d.matches(entry["study_task"], entry["instruction_id"])]


def test_every_study_prompt_is_reproduced_or_a_listed_departure(shared_data, tmp_path):
    entries = read_sample(shared_data)
    import_study(shared_data, tmp_path, entries)
    ours = Ours(entries)

    assert len({departure.cause for departure in DEPARTURES}) == len(DEPARTURES), "causes name departures"
    unexplained = []
    inexact_pairs = set()  # (study task, id) with a difference on any instance
    matched = {departure.cause: set() for departure in DEPARTURES}  # cause -> study tasks it matched
    occurred: Counter = Counter()  # (cause, study task, difference) -> entries
    exact = 0
    for entry in entries:
        found, example = differences(entry, ours)
        assert found <= set(DIFFERENCES), found
        departures = explaining(entry)
        for departure in departures:
            matched[departure.cause].add(entry["study_task"])
            for difference in found & departure.differs:
                occurred[(departure.cause, entry["study_task"], difference)] += 1
        if not found:
            exact += 1
            continue
        inexact_pairs.add((entry["study_task"], entry["instruction_id"]))
        covered = set().union(*(departure.differs for departure in departures))
        if found - covered:
            unexplained.append(
                f"{entry['study_task']} {entry['instruction_id']} {entry['source']['file']}#"
                f"{entry['source']['index']}: {sorted(found - covered)} {example}"
            )

    by_cause: Counter = Counter()
    for (cause, _, difference), n in occurred.items():
        by_cause[(cause, difference)] += n
    pairs = {(entry["study_task"], entry["instruction_id"]) for entry in entries}
    print(
        f"\nstudy fidelity: {exact} of {len(entries)} entries exact ({len(pairs - inexact_pairs)} of "
        f"{len(pairs)} (task, instruction) pairs on all their instances); departures (entries per difference):"
    )
    for (cause, difference), n in sorted(by_cause.items()):
        print(f"  {cause} ({difference}): {n}")
    assert not unexplained, f"{len(unexplained)} entries differ without a listed departure:\n" + "\n".join(
        unexplained[:400]
    )
    # Stale: a departure must still occur, for each of its differences, on every study task it names (or, for
    # one that names none, on every task it matches).
    stale = [
        f"{departure.cause}: {difference} on {task}"
        for departure in DEPARTURES
        for task in sorted(departure.tasks or matched[departure.cause] or {"any task"})
        for difference in sorted(departure.differs)
        if not occurred[(departure.cause, task, difference)]
    ]
    assert not stale, "listed departures that no longer occur (remove them):\n" + "\n".join(stale)
