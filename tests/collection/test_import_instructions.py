import json
from collections import Counter

import pytest
from django.core.management import CommandError, call_command

from collection.importers.instructions import STUDY_TASKS
from collection.models import Instruction, Task

pytestmark = pytest.mark.django_db

STUDY_FILE = "paper_instructions/InstructionEval_unobserved_instructions.extracted.json"


@pytest.fixture
def study_tasks(shared_data):
    call_command("import_mmlu", shared_data / "mmlu" / "test")
    call_command(
        "import_bigbench", *sorted(p for p in (shared_data / "bigbench_lite_tasks").iterdir() if p.is_dir())
    )


def expected_templates(path) -> dict[tuple[str, str], dict[str, str]]:
    """Straight from the JSON: every entry written as a template, per (benchmark, task) slug."""
    data = json.loads(path.read_text())
    expected = {}
    for key, entry in data.items():
        if key == "_meta":
            continue
        for item in entry["instructions"]:
            strings = item.get("strings", {})
            text = strings.get("input_template", strings.get("input_text(formatted)"))
            if text is not None and item["id"].startswith(("BBL/", "MMLU/")):
                expected.setdefault(STUDY_TASKS[key], {})[item["id"]] = text
    return expected


def test_every_template_is_attached_to_its_task(shared_data, study_tasks, capsys):
    path = shared_data / STUDY_FILE
    call_command("import_instructions", path, "--format", "instructioneval")

    expected = expected_templates(path)
    imported_tasks = {
        key for key in expected if Task.objects.filter(benchmark__slug=key[0], slug=key[1]).exists()
    }
    # The shared data lacks language_identification and vitaminc_fact_verification; their templates are
    # reported as skipped, every other one is attached.
    assert {key for key in expected if key not in imported_tasks} == {
        ("bigbench-lite", "language_identification"),
        ("bigbench-lite", "vitaminc_fact_verification"),
    }
    for benchmark_slug, task_slug in imported_tasks:
        stored = {
            i.external_id: i.template
            for i in Instruction.objects.filter(task__benchmark__slug=benchmark_slug, task__slug=task_slug)
            .exclude(collection__slug="benchmark-default")
            .select_related("current_revision")
        }
        assert stored == expected[(benchmark_slug, task_slug)], task_slug
    assert Instruction.objects.filter(source__startswith="InstructionEval").count() == 142
    assert Counter(Instruction.objects.filter(task__slug="mmlu").values_list("status", flat=True)) == {
        "approved": 20
    }
    out = capsys.readouterr().out
    assert "templates skipped: task not imported: 20" in out


def test_study_templates_with_their_own_answer_words_keep_them(shared_data, study_tasks):
    call_command("import_instructions", shared_data / STUDY_FILE, "--format", "instructioneval")
    phrasing = Instruction.objects.get(
        task__slug="play_dialog_same_or_different", external_id="BBL/Unobserved/2"
    )
    assert phrasing.current_revision.labels == ["yes", "no"]


def test_a_second_import_adds_nothing(shared_data, study_tasks):
    path = shared_data / STUDY_FILE
    call_command("import_instructions", path, "--format", "instructioneval")
    before = Instruction.objects.count()
    call_command("import_instructions", path, "--format", "instructioneval")
    assert Instruction.objects.count() == before


@pytest.fixture
def demo_tasks(db):
    call_command("load_demo")


def write_jsonl(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_generic_jsonl_imports_pending_phrasings_once(tmp_path, demo_tasks, alice):
    path = write_jsonl(
        tmp_path / "p.jsonl",
        [
            {"task": "demo/parity", "template": "Is {number} divisible by 2? yes/no", "author": "alice"},
            {
                "task": "demo/sentiment",
                "template": "{sentence} Mood?",
                "source": "my lab",
                "collection": "crowd",
            },
        ],
    )
    call_command("import_instructions", path, "--format", "jsonl")
    new = Instruction.objects.filter(status="pending")
    assert new.count() == 2
    assert new.get(task__slug="parity").author == alice
    call_command("import_instructions", path, "--format", "jsonl")
    assert Instruction.objects.filter(status="pending").count() == 2


def test_generic_csv_imports_label_words(tmp_path, demo_tasks):
    path = tmp_path / "p.csv"
    path.write_text('task,template,source,labels\ndemo/parity,"Even number? {number} Say Y or N.",lab,Y|N\n')
    call_command("import_instructions", path, "--format", "csv")
    assert Instruction.objects.get(source="lab").current_revision.labels == ["Y", "N"]


@pytest.mark.parametrize(
    "template, message",
    [
        ("Is {numbr} even?", "Unknown placeholder {numbr}. Did you mean {number}?"),
        ("{number.__class__.__mro__}", "is not a placeholder"),
        ("{number} {% debug %}", "is not a placeholder"),
        ("", "The phrasing is empty"),
    ],
)
def test_a_bad_template_fails_the_whole_file_and_changes_nothing(tmp_path, demo_tasks, template, message):
    before = Instruction.objects.count()
    path = write_jsonl(
        tmp_path / "p.jsonl",
        [
            {"task": "demo/parity", "template": "Is {number} even or odd?", "source": "lab"},
            {"task": "demo/parity", "template": template, "source": "lab"},
        ],
    )
    with pytest.raises(CommandError) as failure:
        call_command("import_instructions", path, "--format", "jsonl")
    assert f"{path}: line 2:" in str(failure.value)
    assert message in str(failure.value)
    assert Instruction.objects.count() == before


def test_an_unknown_task_or_user_is_named(tmp_path, demo_tasks):
    path = write_jsonl(tmp_path / "p.jsonl", [{"task": "demo/nope", "template": "{x}", "source": "lab"}])
    with pytest.raises(CommandError, match="line 1: no task 'demo/nope'"):
        call_command("import_instructions", path, "--format", "jsonl")
    path = write_jsonl(
        tmp_path / "p.jsonl", [{"task": "demo/parity", "template": "{number}", "author": "zed"}]
    )
    with pytest.raises(CommandError, match="no user named 'zed'"):
        call_command("import_instructions", path, "--format", "jsonl")
