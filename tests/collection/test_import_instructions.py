import io
import json
import shutil
from collections import Counter

import pytest
from django.core.management import CommandError, call_command

from collection.importers.instructions import STUDY_TASKS
from collection.models import Instruction, Task

pytestmark = pytest.mark.django_db

STUDY_FILE = "paper_instructions/InstructionEval_unobserved_instructions.extracted.json"
OBSERVED_FILE = "paper_instructions/InstructionEval_observed_instructions.extracted.json"


def import_mmlu_subjects(shared_data, tmp_path, names=("abstract_algebra", "anatomy")):
    # Phrasings attach to the pooled MMLU task, which any subject creates: a few subjects keep this quick.
    subjects = tmp_path / "mmlu"
    subjects.mkdir()
    for name in names:
        shutil.copy(shared_data / "mmlu" / "test" / f"{name}_test.csv", subjects)
    call_command("import_mmlu", subjects, stdout=io.StringIO())


@pytest.fixture
def study_tasks(shared_data, tmp_path):
    import_mmlu_subjects(shared_data, tmp_path)
    call_command(
        "import_bigbench",
        *sorted(p for p in (shared_data / "bigbench_lite_tasks").iterdir() if p.is_dir()),
        stdout=io.StringIO(),
    )


@pytest.fixture
def two_study_tasks(shared_data, tmp_path):
    """MMLU and play_dialog only: enough for the refusals (a letter task and a label-word task)."""
    import_mmlu_subjects(shared_data, tmp_path, names=("abstract_algebra",))
    call_command(
        "import_bigbench",
        shared_data / "bigbench_lite_tasks" / "play_dialog_same_or_different",
        stdout=io.StringIO(),
    )


def expected_templates(path) -> dict[tuple[str, str], dict[str, str]]:
    """Straight from the JSON: every entry written as a template, per (benchmark, task) slug."""
    data = json.loads(path.read_text(encoding="utf-8"))
    expected = {}
    for key, entry in data.items():
        if key == "_meta":
            continue
        for item in entry["instructions"]:
            strings = item.get("strings", {})
            text = strings.get("input_template", strings.get("input_text(formatted)"))
            if text is not None and item["id"].startswith(("BBL/", "MMLU/")):
                # Where the study's {question} is not ours, the template names our field.
                if key == "Strange_Stories":
                    text = text.replace("{question}", "{input}")
                if key == "Novel_Concepts" and item["id"].rpartition("/")[2] in {
                    "1",
                    "2",
                    "3",
                    "4",
                    "5",
                    "6",
                    "8",
                    "10",
                }:
                    text = text.replace("{question}", "{things}")
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
            for i in Instruction.objects.filter(
                task__benchmark__slug=benchmark_slug, task__slug=task_slug, prompt_format=""
            )
            .exclude(collection__slug="benchmark-default")
            .select_related("current_revision")
        }
        assert stored == expected[(benchmark_slug, task_slug)], task_slug
    # 142 human-written templates, and for Alpaca-format models 142 unobserved and 12 default phrasings
    # (BIG-bench's prompt in Alpaca's layout on every held task).
    assert Instruction.objects.filter(source__startswith="InstructionEval", prompt_format="").count() == 142
    assert (
        Instruction.objects.filter(source__startswith="InstructionEval", prompt_format="alpaca").count()
        == 154
    )
    assert Counter(Instruction.objects.filter(task__slug="mmlu").values_list("status", flat=True)) == {
        "approved": 20 + 33
    }
    out = capsys.readouterr().out
    assert (
        "BBL/Unobserved: skipped, its task is not imported (import the task, then run this again): 20" in out
    )
    assert "Alpaca unobserved: imported: 142" in out
    assert "Alpaca default: imported: 12" in out
    # The study's alpaca_default layout: the answer cue before the question and after the lettered options.
    winowhy = Instruction.objects.get(task__slug="winowhy", external_id="Alpaca/Default/1")
    assert winowhy.template.endswith(
        "\n\n### Input:\n\nThe above reasoning is  {input} \n{options:letters}\nThe above reasoning is "
    )


def test_alpaca_default_needs_the_tasks_prompt_parts(shared_data, study_tasks, capsys):
    # A task imported before its BIG-bench prompt parts were kept: the entry is skipped, saying what to do.
    Task.objects.filter(slug="winowhy").update(prompt_parts={})
    call_command("import_instructions", shared_data / STUDY_FILE, "--format", "instructioneval")
    assert not Instruction.objects.filter(task__slug="winowhy", external_id="Alpaca/Default/1").exists()
    assert "run import_bigbench again" in capsys.readouterr().out


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


# What the observed file gives on the tasks held here (all but language_identification and
# vitaminc_fact_verification, whose data is not in ../shared), per collection: every entry but those the
# study's own code cannot build (T0/BC/1-8 and T0/Classification/3).
OBSERVED_IMPORTED = {"flan": 32, "niv2": 490, "t0": 117, "alpaca": 215}


def observed_entries(path) -> dict[tuple[str, str], dict]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return {
        (key, item["id"]): item
        for key, entry in data.items()
        if key != "_meta"
        for item in entry["instructions"]
    }


def import_observed(path) -> str:
    out = io.StringIO()
    call_command("import_instructions", path, "--format", "instructioneval", stdout=out)
    return out.getvalue()


def test_observed_templates_go_into_their_collections_approved(shared_data, study_tasks):
    path = shared_data / OBSERVED_FILE
    out = import_observed(path)

    imported = Instruction.objects.exclude(collection__slug__in=["crowd", "benchmark-default"])
    assert dict(Counter(imported.values_list("collection__slug", flat=True))) == OBSERVED_IMPORTED
    assert set(imported.values_list("status", flat=True)) == {"approved"}
    # Each is the file's template, attached to the task the study key names, in its collection.
    entries = observed_entries(path)
    study_key = {task: key for key, task in STUDY_TASKS.items()}
    for phrasing in imported.select_related("current_revision", "task__benchmark", "collection"):
        key = study_key[(phrasing.task.benchmark.slug, phrasing.task.slug)]
        item = entries[(key, phrasing.external_id)]
        # Play_Dialog NIV2/BC: the file's closest template, the play written without its final newline.
        template = item["template"] or item["closest_template"].replace(
            "{play} Question:", "{paragraph} Question:"
        )
        assert phrasing.template == template, (key, phrasing.external_id)
        assert phrasing.prompt_format == ("alpaca" if item["collection"] == "Alpaca" else "")
        assert phrasing.collection.slug == item["collection"].lower(), (key, phrasing.external_id)

    # Per collection: imported, and skipped with the reason.
    for line in [
        "FLAN: imported: 32",
        "NIV2: imported: 490",
        "T0: imported: 117",
        "Alpaca: imported: 215",
        "T0: skipped, the study's own code cannot build its prompt (its scores come from code not published): 34",
    ]:
        assert line in out, line
    # ... and the ids, folded, with the tasks they were skipped on.
    assert "T0/BC/1-8 on Play_Dialog, Strange_Stories, StrategyQA, Winowhy" in out


def test_observed_phrasings_answer_as_the_study_scores_them(shared_data, study_tasks):
    import_observed(shared_data / OBSERVED_FILE)
    # T0's QA templates list the options and the study scores their texts; NIV2's MathQA its a, b, c, d.
    texts = Instruction.objects.get(task__slug="mmlu", external_id="T0/QA/2").current_revision
    assert (texts.answers, texts.labels) == ("texts", None)
    letters = Instruction.objects.get(task__slug="mmlu", external_id="NIV2/QA/11").current_revision
    assert (letters.answers, letters.labels) == ("words", ["a", "b", "c", "d"])
    assert (
        Instruction.objects.get(task__slug="mmlu", external_id="NIV2/QA/1").current_revision.answers == "task"
    )


def test_observed_label_words_follow_the_tasks_label_order(shared_data, study_tasks):
    import_observed(shared_data / OBSERVED_FILE)
    # The study asks whether "different" is the right answer: Yes means different, No means same.
    play = Instruction.objects.get(task__slug="play_dialog_same_or_different", external_id="FLAN/BC/1")
    assert play.task.label_space == ["same", "different"]
    assert play.current_revision.labels == ["No", "Yes"]
    assert play.collection.slug == "flan"
    # StrategyQA's FLAN templates score the task's own Yes/No: no label words.
    assert (
        Instruction.objects.get(task__slug="strategyqa", external_id="FLAN/BC/1").current_revision.labels
        is None
    )
    # On a letter-answered task label words are the answers by position: only NIV2's MathQA has them.
    with_words = Instruction.objects.filter(task__slug="mmlu", current_revision__labels__isnull=False)
    assert {i.external_id for i in with_words} == {f"NIV2/QA/{n}" for n in range(11, 21)}


def test_a_second_observed_import_adds_nothing(shared_data, study_tasks):
    path = shared_data / OBSERVED_FILE
    import_observed(path)
    before = Instruction.objects.count()
    out = import_observed(path)
    assert Instruction.objects.count() == before
    assert "NIV2: already there: 490" in out
    assert "phrasings created" not in out


@pytest.mark.parametrize(
    "change, message",
    [
        (
            {"template": "{qestion} (A) {choiceA}"},
            "MMLU_General NIV2/QA/1: The phrasing for mmlu/mmlu is not valid.",
        ),
        ({"template": 7}, "MMLU_General NIV2/QA/1: 'template' must be text or null"),
        ({"id": "NIV2/QA"}, "MMLU_General NIV2/QA: expected an id 'Collection/Type/N'"),
        ({"id": "NIV2/Unobserved/1"}, "MMLU_General NIV2/Unobserved/1: expected an id 'Collection/Type/N'"),
        ({"collection": "FLAN"}, "that matches its 'collection' ('FLAN')"),
        ({"scored_answers": None}, "MMLU_General NIV2/QA/1: no 'scored_answers'"),
    ],
)
def test_a_malformed_observed_entry_is_refused_by_id_and_nothing_is_written(
    shared_data, two_study_tasks, tmp_path, change, message
):
    data = json.loads((shared_data / OBSERVED_FILE).read_text(encoding="utf-8"))
    entry = next(item for item in data["MMLU_General"]["instructions"] if item["id"] == "NIV2/QA/1")
    entry.update(change)
    path = tmp_path / "observed.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    before = Instruction.objects.count()
    with pytest.raises(CommandError) as failure:
        import_observed(path)
    assert message in str(failure.value)
    assert "nothing was changed" in str(failure.value)
    assert Instruction.objects.count() == before


def test_observed_label_words_that_do_not_name_the_tasks_labels_are_refused(
    shared_data, two_study_tasks, tmp_path
):
    data = json.loads((shared_data / OBSERVED_FILE).read_text(encoding="utf-8"))
    entry = next(item for item in data["Play_Dialog"]["instructions"] if item["id"] == "FLAN/BC/3")
    entry["label_words_order"] = ["same", "other"]
    path = tmp_path / "observed.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(
        CommandError, match=r"Play_Dialog FLAN/BC/3: 'label_words_order' .* \(same, different\) once"
    ):
        import_observed(path)
    assert not Instruction.objects.exclude(collection__slug__in=["crowd", "benchmark-default"]).exists()


@pytest.fixture
def demo_tasks(db):
    call_command("load_demo")


def write_jsonl(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
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
    path.write_text(
        'task,template,source,labels\ndemo/parity,"Even number? {number} Say Y or N.",lab,Y|N\n',
        encoding="utf-8",
    )
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
