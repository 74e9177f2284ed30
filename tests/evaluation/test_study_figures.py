"""The leaderboard reproduces the study's headline figures from its own per-instruction results.

The study (Sun, Shaib & Wallace, ICLR 2024) reports, per model and benchmark, the accuracy on observed
phrasings (the instruction-tuning collections the model saw) and on unobserved ones (written by
practitioners): the macro average over tasks of each task's mean over its instructions. BIG-bench's own
prompt (Type "Default") counts in neither. Here the figures are computed straight from the result CSVs and
compared with what GET /api/leaderboard/ serves after import_results: on the results alone, and after the
README's order (the tasks and the study's phrasings first, then the results), which must not move them
(a published row averages over the tasks its source published results for: aggregates.counts_in_benchmark).
"""

from __future__ import annotations

import csv
import io
import shutil
import time
from collections import defaultdict

import pytest
from django.core.management import call_command

from collection.importers.instructions import STUDY_TASKS

pytestmark = pytest.mark.django_db

MODELS = {
    "Flan-T5-XL": "flan-t5-xl",
    "Flan-T5-XXL": "flan-t5-xxl",
    "T0++": "t0pp",
    "Alpaca-7B": "alpaca-7b",
    "Alpaca-13B": "alpaca-13b",
}
BENCHMARKS = {"MMLU": "mmlu", "BBL": "bigbench-lite"}


INSTRUCTIONS = [
    "paper_instructions/InstructionEval_unobserved_instructions.extracted.json",
    "paper_instructions/InstructionEval_observed_instructions.extracted.json",
]


def import_tasks_and_instructions(shared_data, tmp_path) -> None:
    """The README's order before import_results: MMLU, the BIG-bench Lite task folders (strange_stories and
    logical_deduction with their subtasks), then the study's unobserved and observed phrasings. Two MMLU
    subjects stand for the 57: the study's MMLU phrasings attach to the pooled task, which any subject
    creates, and the whole of MMLU would add most of a minute."""
    quiet = {"stdout": io.StringIO()}
    subjects = tmp_path / "mmlu"
    subjects.mkdir()
    for name in ("abstract_algebra", "anatomy"):
        shutil.copy(shared_data / "mmlu" / "test" / f"{name}_test.csv", subjects)
    call_command("import_mmlu", subjects, **quiet)
    folders = sorted(path for path in (shared_data / "bigbench_lite_tasks").iterdir() if path.is_dir())
    call_command("import_bigbench", *folders, **quiet)
    for name in INSTRUCTIONS:
        call_command("import_instructions", shared_data / name, "--format", "instructioneval", **quiet)


def study_figures(main) -> dict[tuple[str, str, str], float]:
    """(model, benchmark slug, set) -> the study's figure, from the CSVs alone."""
    figures = {}
    for folder, benchmark in BENCHMARKS.items():
        for path in sorted((main / folder).glob("*.csv")):
            by_task: dict[str, dict[str, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
            for row in csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))):
                if row["Include?"].strip().lower() != "true" or row["Shots"].strip() != "0":
                    continue
                try:
                    accuracy = float(row["Performance"])
                except ValueError:
                    continue
                kind = {"Unobserved": "unobserved", "Default": "defaults"}.get(row["Type"], "observed")
                phrasing = f"{row['Collection']}/{row['Type']}/{row['ID']}"
                by_task[kind][row["Dataset"]][phrasing] = accuracy  # a repeated row: the later one
            model = MODELS.get(row["Model"])
            if model is None:
                continue
            for kind in ("observed", "unobserved"):
                means = [sum(v.values()) / len(v) for v in by_task[kind].values()]
                figures[(model, benchmark, kind)] = sum(means) / len(means)
    return figures


def every_row(client, benchmark: str, phrasing_set: str) -> list[dict]:
    """The ranked rows and those with partial coverage. The study measures each model on its own
    phrasings (Alpaca's are Alpaca-format, T0's are P3's), so most of its rows share too little with the
    others for the common ground: they are listed apart, on their own phrasings, with ?partial=1."""
    body = client.get(f"/api/leaderboard/?benchmark={benchmark}&set={phrasing_set}&partial=1").json()
    return body["results"] + body["partial"]


def study_tasks(main) -> dict[tuple[str, str], list[str]]:
    """(model, benchmark slug) -> the tasks (our slugs) its published figures average over."""
    tasks = {}
    for folder, benchmark in BENCHMARKS.items():
        for path in sorted((main / folder).glob("*.csv")):
            rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
            model = MODELS.get(rows[0]["Model"])
            if model is not None:
                tasks[(model, benchmark)] = sorted({STUDY_TASKS[row["Dataset"]][1] for row in rows})
    return tasks


@pytest.mark.parametrize("tasks_first", [False, True], ids=["results alone", "README order"])
def test_observed_and_unobserved_figures_match_the_study_within_five_hundredths_of_a_point(
    shared_data, client, capsys, tmp_path, tasks_first
):
    started = time.perf_counter()
    if tasks_first:
        import_tasks_and_instructions(shared_data, tmp_path)
    main = shared_data / "paper_results_csv" / "Main"
    call_command("import_results", main, stdout=io.StringIO())
    expected = study_figures(main)
    assert len(expected) == 20
    tasks = study_tasks(main)
    assert len(tasks[("flan-t5-xl", "bigbench-lite")]) == 14 and tasks[("flan-t5-xl", "mmlu")] == ["mmlu"]

    worst = 0.0
    lines = []
    for (model, benchmark, kind), study in sorted(expected.items()):
        by_set = every_row(client, benchmark, kind)
        row = next(row for row in by_set if row["model"] == model)
        # The tasks counted are the study's own, whatever of them this database holds instances for.
        assert row["tasks_counted"] == tasks[(model, benchmark)], (model, benchmark, kind)
        # The "all" rows carry the same comparison as their observed/unobserved figures.
        every = every_row(client, benchmark, "all")
        within_all = next(row for row in every if row["model"] == model)[f"{kind}_avgp"]
        worst = max(worst, abs(row["avgp"] - study) * 100, abs(within_all - study) * 100)
        lines.append(
            f"{model:12} {benchmark:14} {kind:10} ours {row['avgp'] * 100:6.2f}  study {study * 100:6.2f}"
        )
    flow = "README order" if tasks_first else "results alone"
    with capsys.disabled():
        print(
            f"\nstudy figures, {flow} (points):\n"
            + "\n".join(lines)
            + f"\nlargest difference: {worst:.4f} pt ({time.perf_counter() - started:.0f} s)"
        )
    assert worst <= 0.05


def test_benchmark_defaults_are_a_set_of_their_own(shared_data, client):
    call_command("import_results", shared_data / "paper_results_csv" / "Main" / "BBL", stdout=io.StringIO())
    defaults = client.get("/api/leaderboard/?benchmark=bigbench-lite&set=defaults")
    assert defaults.status_code == 200
    rows = {row["model"]: row for row in every_row(client, "bigbench-lite", "defaults")}
    assert {"flan-t5-xl", "alpaca-7b"} <= set(rows)
    # One default per task: BIG-bench's own prompt (Alpaca's form of it for Alpaca models).
    assert all(row["phrasings"] == row["tasks"] for row in rows.values())
