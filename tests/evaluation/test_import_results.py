"""The study's published accuracies become imported leaderboard rows, matched to its tasks and phrasings."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

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


def test_the_study_results_become_imported_rows_matched_to_tasks_and_phrasings(imported):
    # One import, several checks: importing MMLU and the study's results takes most of a minute.
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


def test_a_second_import_changes_nothing(imported, shared_data, capsys):
    count = PhrasingResult.objects.count()
    call_command("import_results", shared_data / "paper_results_csv" / "Main")
    assert PhrasingResult.objects.count() == count
    assert "results imported" not in capsys.readouterr().out


def test_a_malformed_file_changes_nothing(db, tmp_path):
    (tmp_path / "a.csv").write_text("Model,Dataset\nx,y\n")
    with pytest.raises(CommandError, match="expected the columns"):
        call_command("import_results", tmp_path)
    assert not LanguageModel.objects.exists()
