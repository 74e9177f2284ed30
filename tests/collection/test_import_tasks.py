import json
import socket

import pytest
from django.core.management import CommandError, call_command

from collection.importers.tasks import hf_records, import_task_records
from collection.models import Instance, Task

pytestmark = pytest.mark.django_db


def test_jsonl_rows_create_tasks_with_inferred_answers(tmp_path):
    rows = [
        {
            "task": "sentiment",
            "id": "a",
            "inputs": {"text": "great"},
            "options": ["negative", "positive"],
            "answer": "positive",
        },
        {
            "task": "sentiment",
            "id": "b",
            "inputs": {"text": "bad"},
            "options": ["negative", "positive"],
            "answer": 0,
        },
        {
            "task": "trivia",
            "id": "1",
            "split": "train",
            "inputs": {"question": "2+2?"},
            "options": ["3", "4", "5"],
            "answer": "B",
        },
        {
            "task": "trivia",
            "id": "2",
            "inputs": {"question": "Sky?"},
            "options": ["blue", "green"],
            "answer": "A",
        },
    ]
    path = tmp_path / "tasks.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    call_command("import_tasks", path, "--benchmark", "mine")

    sentiment = Task.objects.get(slug="sentiment")
    assert (sentiment.kind, sentiment.answer_format, sentiment.label_space) == (
        "binary",
        "option_text",
        ["negative", "positive"],
    )
    assert Instance.objects.get(task=sentiment, source_id="a").gold == 1
    trivia = Task.objects.get(slug="trivia")
    assert (trivia.answer_format, trivia.label_space, trivia.max_options) == ("letter", ["A", "B", "C"], 3)
    assert Instance.objects.get(task=trivia, source_id="1").split == "train"

    call_command("import_tasks", path, "--benchmark", "mine")
    assert Instance.objects.count() == 4


def test_csv_rows_take_option_columns(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(
        "task,id,question,option_A,option_B,option_C,answer\nq,1,Capital of France?,Paris,Rome,,A\n",
        encoding="utf-8",
    )
    call_command("import_tasks", path, "--benchmark", "mine")
    instance = Instance.objects.get()
    assert instance.options == ["Paris", "Rome"] and instance.inputs == {"question": "Capital of France?"}


@pytest.mark.parametrize(
    "line, reason",
    [
        (
            '{"task": "t", "inputs": {"q": "x"}, "options": ["a", "b"], "answer": "c"}',
            "answer 'c' is not an option",
        ),
        ('{"task": "t", "inputs": {"q": "x"}, "options": ["a"], "answer": 0}', "at least two options"),
        ('{"task": "t", "inputs": "x", "options": ["a", "b"], "answer": 0}', "'inputs' must map"),
        ("[1, 2]", "expected a JSON object"),
        # A task's slug is in its pages' addresses: "Sentiment Analysis" made the benchmark's page answer 500.
        (
            '{"task": "Sentiment Analysis", "inputs": {"q": "x"}, "options": ["a", "b"], "answer": 0}',
            "line 2: the task 'Sentiment Analysis' is not a slug",
        ),
        (
            '{"task": "t", "inputs": {"q": "x"}, "options": ["a", "b"], "answer": 0, "split": "dev"}',
            "split 'dev'",
        ),
    ],
)
def test_a_bad_row_fails_the_whole_file(tmp_path, line, reason):
    path = tmp_path / "t.jsonl"
    path.write_text(
        '{"task": "t", "inputs": {"q": "ok"}, "options": ["a", "b"], "answer": 0}\n' + line + "\n",
        encoding="utf-8",
    )
    with pytest.raises(CommandError, match=reason):
        call_command("import_tasks", path, "--benchmark", "mine")
    assert Task.objects.count() == 0 and Instance.objects.count() == 0


def test_hugging_face_rows_map_to_task_records():
    datasets = pytest.importorskip("datasets")
    dataset = datasets.Dataset.from_dict(
        {
            "question": ["2+2?", "Sky?"],
            "choices": [["3", "4"], ["blue", "red"]],
            "answer": [1, 0],
            "subject": ["m", "n"],
        }
    )
    records = hf_records(
        dataset,
        task="toy",
        question_field="question",
        options_field="choices",
        answer_field="answer",
        extra_fields=["subject"],
        split="eval",
    )
    report = import_task_records("hf:toy", records, benchmark_slug="hf")
    assert report.counts["instances created"] == 2
    instance = Instance.objects.get(source_id="0")
    assert instance.inputs == {"question": "2+2?", "subject": "m"} and instance.gold == 1


def _online() -> bool:
    try:
        socket.create_connection(("huggingface.co", 443), timeout=3).close()
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _online(), reason="offline: huggingface.co is not reachable from this machine")
def test_it_imports_a_dataset_from_the_hub_by_name():
    call_command(
        "import_hf_dataset",
        "cais/mmlu",
        "--config",
        "abstract_algebra",
        "--split",
        "test",
        "--benchmark",
        "mmlu-hf",
        "--task",
        "abstract_algebra",
    )
    assert Instance.objects.filter(task__slug="abstract_algebra").count() == 100


def test_an_unreachable_dataset_fails_with_a_reason(monkeypatch):
    datasets = pytest.importorskip("datasets")

    def refuse(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(datasets, "load_dataset", refuse)
    with pytest.raises(CommandError, match="could not load from the Hugging Face hub: no network"):
        call_command("import_hf_dataset", "x/y", "--benchmark", "b", "--task", "t")


def test_a_dataset_import_refuses_names_that_are_not_slugs_before_downloading(monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: pytest.fail("downloaded before checking"))
    with pytest.raises(CommandError, match="the task 'Trivia QA' is not a slug"):
        call_command("import_hf_dataset", "x/y", "--benchmark", "b", "--task", "Trivia QA")


def test_changed_content_under_an_existing_id_is_refused(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(
        '{"task": "t", "id": "1", "inputs": {"q": "x"}, "options": ["a", "b"], "answer": 0}\n',
        encoding="utf-8",
    )
    call_command("import_tasks", path, "--benchmark", "mine")
    path.write_text(
        '{"task": "t", "id": "1", "inputs": {"q": "x"}, "options": ["a", "b"], "answer": 1}\n',
        encoding="utf-8",
    )
    with pytest.raises(CommandError, match="already exist with different content"):
        call_command("import_tasks", path, "--benchmark", "mine")
    assert Instance.objects.get().gold == 0


@pytest.mark.parametrize("benchmark", ["My Bench", "Bad_Slug!", "é"])
def test_a_benchmark_name_that_is_not_a_slug_is_refused_before_anything_is_written(tmp_path, benchmark):
    # It is in every address under /b/<benchmark>/: the home page answered 500 once one was imported.
    path = tmp_path / "t.jsonl"
    path.write_text(
        '{"task": "t", "inputs": {"q": "ok"}, "options": ["a", "b"], "answer": 0}\n', encoding="utf-8"
    )
    with pytest.raises(CommandError, match=f"the benchmark slug '{benchmark}' is not a slug"):
        call_command("import_tasks", path, "--benchmark", benchmark)
    assert Task.objects.count() == 0 and Instance.objects.count() == 0
