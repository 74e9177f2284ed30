import csv

import pytest
from django.core.management import CommandError, call_command

from collection.models import Instance, Task

pytestmark = pytest.mark.django_db


def db_state() -> tuple[int, int]:
    return Task.objects.count(), Instance.objects.count()


def test_it_imports_57_subjects_under_one_pooled_task_with_the_right_gold(shared_data):
    call_command("import_mmlu", shared_data / "mmlu" / "test")

    pooled = Task.objects.get(benchmark__slug="mmlu", slug="mmlu")
    subjects = Task.objects.filter(parent=pooled)
    assert subjects.count() == 57
    assert Instance.objects.filter(task__parent=pooled).count() == 14_042
    assert pooled.label_space == ["A", "B", "C", "D"]

    # Every row's gold option is the answer letter's position, checked against the CSV itself.
    path = shared_data / "mmlu" / "test" / "high_school_macroeconomics_test.csv"
    with path.open(newline="", encoding="utf-8") as f:
        records = list(csv.reader(f))
    stored = {i.source_id: i for i in Instance.objects.filter(task__slug="high_school_macroeconomics")}
    assert len(stored) == len(records)
    for index, record in enumerate(records):
        instance = stored[f"high_school_macroeconomics/test/{index}"]
        assert instance.inputs == {"question": record[0]}
        assert instance.options == record[1:5]
        assert instance.gold == "ABCD".index(record[5])


def test_a_second_import_adds_nothing(shared_data, capsys):
    call_command("import_mmlu", shared_data / "mmlu" / "test")
    before = db_state()
    call_command("import_mmlu", shared_data / "mmlu" / "test")
    assert db_state() == before
    assert "instances created: 0" in capsys.readouterr().out


def test_a_malformed_csv_fails_naming_the_file_and_line_and_changes_nothing(tmp_path):
    good = tmp_path / "anatomy_test.csv"
    good.write_text('"What is it?",a,b,c,d,A\n', encoding="utf-8")
    bad = tmp_path / "zoology_test.csv"
    bad.write_text('"Q1?",a,b,c,d,B\n"Q2?",a,b,c,D\n', encoding="utf-8")
    with pytest.raises(CommandError) as failure:
        call_command("import_mmlu", tmp_path)
    message = str(failure.value)
    assert "nothing was changed" in message
    assert f"{bad}: line 2: expected 6 columns (question, A, B, C, D, answer), found 5" in message
    assert db_state() == (0, 0)


def test_an_answer_that_is_not_a_letter_is_refused(tmp_path):
    (tmp_path / "x_test.csv").write_text('"Q?",a,b,c,d,E\n', encoding="utf-8")
    with pytest.raises(CommandError, match="answer 'E' is not one of A, B, C, D"):
        call_command("import_mmlu", tmp_path)
    assert db_state() == (0, 0)


def test_a_file_that_is_not_utf8_is_refused(tmp_path):
    (tmp_path / "x_test.csv").write_bytes('"Caf\xe9?",a,b,c,d,A\n'.encode("latin-1"))
    with pytest.raises(CommandError, match="not UTF-8 text"):
        call_command("import_mmlu", tmp_path)
    assert db_state() == (0, 0)
