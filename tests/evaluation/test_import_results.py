"""The study's published accuracies become imported leaderboard rows, matched to its tasks and phrasings."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from collection.importers.base import benchmark_upsert
from collection.models import Instance, Task
from evaluation.models import BenchmarkSummary, LanguageModel, PhrasingResult, TaskSummary

pytestmark = pytest.mark.django_db

MODELS = {"alpaca-13b", "alpaca-7b", "flan-t5-xl", "flan-t5-xxl", "t0pp", "t0-3b"}


@pytest.fixture
def imported(shared_data, capsys):
    call_command("import_mmlu", shared_data / "mmlu" / "test")
    call_command(
        "import_instructions",
        shared_data / "paper_instructions" / "InstructionEval_unobserved_instructions.extracted.json",
        "--format",
        "instructioneval",
    )
    capsys.readouterr()
    call_command("import_results", shared_data / "paper_results_csv" / "Main")
    return capsys.readouterr().out


def test_the_study_results_become_imported_rows_matched_to_tasks_and_phrasings_once(
    imported, shared_data, capsys
):
    # One import, several checks: importing MMLU and the study's results takes most of a minute (so the
    # second import's check is here too, not in a test of its own that imported everything again).
    assert set(LanguageModel.objects.values_list("name", flat=True)) == MODELS
    for benchmark in ("mmlu", "bigbench-lite"):
        rows = BenchmarkSummary.objects.filter(benchmark__slug=benchmark, phrasing_set="all", task_kind="")
        assert {s.variant.model.name for s in rows} == MODELS, benchmark
        assert all(s.figures["ci_method"] == "phrasings only" for s in rows)
        # Observed and unobserved figures exist for every model (the study's main comparison).
        assert all(
            s.figures["observed_avgp"] is not None and s.figures["unobserved_avgp"] is not None for s in rows
        )

    # Non-numeric cells are reported and skipped.
    assert "rows with a non-numeric Performance (skipped): 56" in imported
    # 2,970 rows, 56 non-numeric; Flan-T5-XXL's BBQ_Lite NIV2/QA/31 and /32 appear twice in the source.
    assert "duplicate rows (the later one is kept): 2" in imported
    assert PhrasingResult.objects.count() == 2970 - 56 - 2

    # Results match the study phrasings we hold; the others are created as text-less external phrasings.
    flan = LanguageModel.objects.get(name="flan-t5-xl").variants.get()
    mmlu_unobserved = PhrasingResult.objects.get(
        variant=flan, revision__instruction__external_id="MMLU/Unobserved/1"
    )
    assert mmlu_unobserved.revision.instruction.text_available  # the imported study phrasing, with its text
    niv2 = PhrasingResult.objects.filter(variant=flan, revision__instruction__collection__slug="niv2")
    assert niv2.exists() and not niv2.first().revision.instruction.text_available
    summary = TaskSummary.objects.get(variant=flan, task__slug="mmlu", phrasing_set="all").figures
    assert summary["observed_avgp"] > summary["unobserved_avgp"]  # the study's finding, in its own numbers

    # A second import changes nothing.
    count = PhrasingResult.objects.count()
    call_command("import_results", shared_data / "paper_results_csv" / "Main")
    assert PhrasingResult.objects.count() == count
    assert "results imported" not in capsys.readouterr().out


def test_a_malformed_file_changes_nothing(db, tmp_path):
    (tmp_path / "a.csv").write_text("Model,Dataset\nx,y\n", encoding="utf-8")
    with pytest.raises(CommandError, match="expected the columns"):
        call_command("import_results", tmp_path)
    assert not LanguageModel.objects.exists()


# A published model's unobserved accuracies on three study tasks: one a subtask in BIG-bench's own files
# (the study scored strange_stories' boolean subtask alone), one whose files are not held here, one plain.
PUBLISHED = {
    "Strange_Stories": [0.5, 0.6, 0.7],
    "Language_Identification": [0.2, 0.3],
    "Winowhy": [0.9, 0.8, 0.7, 0.6],
}
PUBLISHED_TASKS = ["language_identification", "strange_stories-boolean", "winowhy"]


def _write_published(tmp_path):
    lines = ["Model,Dataset,Collection,Type,ID,Shots,Performance,Metric,Include?"]
    for dataset, accuracies in PUBLISHED.items():
        for number, accuracy in enumerate(accuracies, start=1):
            lines.append(f"Flan-T5-XL,{dataset},BBL,Unobserved,{number},0,{accuracy},Acc,TRUE")
    path = tmp_path / "Flan-T5-XL.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _import_bigbench_like_tasks():
    """What import_bigbench makes of the three (without its phrasings), over any task of the same name:
    strange_stories with its boolean subtask, and winowhy, each with an instance; language_identification
    has no files here."""
    benchmark, _ = benchmark_upsert(slug="bigbench-lite", name="BIG-bench Lite")
    common = {"kind": Task.Kind.MULTIPLE_CHOICE, "answer_format": Task.AnswerFormat.LETTER}
    parent, _ = Task.objects.update_or_create(
        benchmark=benchmark, slug="strange_stories", defaults={"name": "strange_stories", **common}
    )
    for slug, task_parent in (("strange_stories-boolean", parent), ("winowhy", None)):
        task, _ = Task.objects.update_or_create(
            benchmark=benchmark, slug=slug, defaults={"name": slug, "parent": task_parent, **common}
        )
        Instance.objects.create(
            task=task, source_id="0", inputs={"question": "?"}, options=["A", "B"], gold=0
        )


def _published_row(client) -> dict:
    body = client.get(
        "/api/leaderboard/", {"benchmark": "bigbench-lite", "set": "unobserved", "partial": "1"}
    )
    (row,) = body.json()["results"] + body.json()["partial"]
    return row | {"tasks_rule": body.json()["tasks_rule"]}


@pytest.mark.parametrize("tasks_first", [True, False], ids=["tasks first", "results first"])
def test_a_published_row_averages_over_every_task_it_has_results_for_whatever_was_imported_first(
    client, tmp_path, tasks_first
):
    path = _write_published(tmp_path)
    if tasks_first:
        _import_bigbench_like_tasks()
    call_command("import_results", path, stdout=io.StringIO())
    expected = np.mean([np.mean(accuracies) for accuracies in PUBLISHED.values()])

    row = _published_row(client)
    assert row["tasks"] == 3 and row["tasks_counted"] == PUBLISHED_TASKS
    assert row["avgp"] == pytest.approx(expected)
    assert "A published row (imported results) averages over every task" in row["tasks_rule"]
    if not tasks_first:
        # The task files imported afterwards make strange_stories-boolean a subtask: once the figures are
        # refreshed (a second import refreshes them and adds nothing), they are what they were.
        _import_bigbench_like_tasks()
        call_command("import_results", path, stdout=io.StringIO())
        assert Task.objects.get(slug="strange_stories-boolean").parent is not None
        row = _published_row(client)
        assert row["tasks_counted"] == PUBLISHED_TASKS and row["avgp"] == pytest.approx(expected)

    # The page says which tasks the published rows average over, and why.
    page = client.get(reverse("leaderboard", args=["bigbench-lite"])).content.decode()
    statement = page.split('id="published-tasks"', 1)[1].split("</p>", 1)[0]
    assert "average over the 3 tasks their source published results for" in statement
    assert "language_identification (no instances here)" in statement
    assert "strange_stories-boolean (a subtask here)" in statement
    assert "whatever was imported first" in statement
