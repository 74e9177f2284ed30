import json

import pytest
from django.core.management import CommandError, call_command

from collection.models import Instance, Instruction, Task

pytestmark = pytest.mark.django_db


def task_dirs(shared_data):
    return sorted(p for p in (shared_data / "bigbench_lite_tasks").iterdir() if p.is_dir())


def test_every_task_and_subtask_has_as_many_instances_as_its_json(shared_data):
    call_command("import_bigbench", *task_dirs(shared_data))

    expected = {}
    for directory in task_dirs(shared_data):
        for path in [directory / "task.json", *sorted(directory.glob("*/task.json"))]:
            slug = directory.name if path.parent == directory else f"{directory.name}-{path.parent.name}"
            expected[slug] = len(json.loads(path.read_text(encoding="utf-8")).get("examples", []))
    stored = {t.slug: t.instances.count() for t in Task.objects.filter(benchmark__slug="bigbench-lite")}
    assert stored == expected
    assert len(expected) == 12 + 18 + 6 + 3 + 2  # tasks + subtasks of bbq, conceptual, logical, strange
    assert Task.objects.filter(benchmark__slug="bigbench-lite", parent__isnull=True).count() == 12


def test_gold_options_and_study_fields_come_from_the_json(shared_data):
    directory = shared_data / "bigbench_lite_tasks" / "play_dialog_same_or_different"
    call_command("import_bigbench", directory)
    task = Task.objects.get(slug="play_dialog_same_or_different")
    assert task.answer_format == Task.AnswerFormat.OPTION_TEXT
    assert task.label_space == ["same", "different"]
    examples = json.loads((directory / "task.json").read_text(encoding="utf-8"))["examples"]
    for index in (0, 1, 500):
        instance = Instance.objects.get(task=task, source_id=str(index))
        gold_text = max(examples[index]["target_scores"], key=examples[index]["target_scores"].get)
        assert instance.options[instance.gold] == gold_text
        assert instance.inputs["question"] == examples[index]["input"]
        # The study's split of the dialogue into the play and the two quoted lines.
        assert f'"{instance.inputs["line1"]}"' in examples[index]["input"]
        assert instance.inputs["play"] and examples[index]["input"].startswith(instance.inputs["play"])


def test_multiple_choice_tasks_are_answered_with_letters_and_get_the_default_prompt(shared_data):
    call_command("import_bigbench", shared_data / "bigbench_lite_tasks" / "logical_deduction")
    parent = Task.objects.get(slug="logical_deduction")
    assert parent.answer_format == Task.AnswerFormat.LETTER
    assert parent.label_space == list("ABCDEFG")
    assert set(parent.subtasks.values_list("slug", flat=True)) == {
        "logical_deduction-three_objects",
        "logical_deduction-five_objects",
        "logical_deduction-seven_objects",
    }
    default = Instruction.objects.get(task=parent, collection__slug="benchmark-default")
    assert default.status == Instruction.Status.APPROVED
    # BIG-bench's prompt takes the whole input, as BIG-bench (and the study) build it.
    assert "{input}" in default.template and "{options:parens}" in default.template


def test_a_second_import_adds_nothing(shared_data):
    call_command("import_bigbench", *task_dirs(shared_data))
    counts = (Task.objects.count(), Instance.objects.count(), Instruction.objects.count())
    call_command("import_bigbench", *task_dirs(shared_data))
    assert (Task.objects.count(), Instance.objects.count(), Instruction.objects.count()) == counts


def test_a_task_json_with_no_examples_fails_and_changes_nothing(shared_data, tmp_path):
    empty = tmp_path / "empty_task"
    empty.mkdir()
    (empty / "task.json").write_text(
        json.dumps({"name": "empty_task", "description": "x", "examples": []}), encoding="utf-8"
    )
    good = shared_data / "bigbench_lite_tasks" / "hindu_knowledge"
    with pytest.raises(CommandError) as failure:
        call_command("import_bigbench", good, empty)
    assert f"{empty / 'task.json'}: the task has no examples" in str(failure.value)
    assert Task.objects.count() == 0 and Instance.objects.count() == 0


@pytest.mark.parametrize(
    "content, reason",
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"examples": [{"input": "q", "target": "a"}]}), "has no 'target_scores'"),
        (
            json.dumps({"examples": [{"input": "q", "target_scores": {"a": 1, "b": 1}}]}),
            "share the top score",
        ),
    ],
)
def test_malformed_task_files_are_refused_with_the_reason(tmp_path, content, reason):
    (tmp_path / "task.json").write_text(content, encoding="utf-8")
    with pytest.raises(CommandError, match=reason):
        call_command("import_bigbench", tmp_path)
    assert Task.objects.count() == 0
