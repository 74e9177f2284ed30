"""What a phrasing answers with (collection/answers.py), and instances that a later import widens."""

import pytest
from django.core.management import call_command

from collection import services
from collection.answers import answer_texts, option_texts
from collection.models import Collection, Instance, InstructionRevision, Task
from core.errors import ApplicationError

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo(db):
    call_command("load_demo")


def create(task, template, **kwargs):
    return services.instruction_create(
        task=task, template=template, collection=Collection.objects.get(slug="crowd"), source="test", **kwargs
    )


def test_a_letter_task_answers_with_letters_unless_the_phrasing_says_otherwise(demo):
    task = Task.objects.get(slug="larger-number")
    instance = task.instances.first()
    letters = create(task, "{question}\n{options}").current_revision
    digits = create(task, "{question}\n1. {choiceA}\n2. {choiceB}", labels=["1", "2"]).current_revision
    texts = create(task, "{question} {choiceA} or {choiceB}?", answers="texts").current_revision
    assert option_texts(task, letters, instance) == ("A", "B")
    # Label words on a letter task are the answers by option position.
    assert digits.answers == InstructionRevision.Answers.WORDS
    assert option_texts(task, digits, instance) == ("1", "2")
    assert option_texts(task, texts, instance) == tuple(instance.options)
    assert option_texts(task, texts, instance)[instance.gold] == instance.options[instance.gold]


def test_label_words_on_a_label_task_map_the_tasks_labels(demo):
    task = Task.objects.get(slug="parity")
    instance = task.instances.first()
    assert answer_texts(task, ["Even", "Odd"], instance) == tuple(
        {"yes": "Even", "no": "Odd"}[option] for option in instance.options
    )
    assert answer_texts(task, None, instance) == tuple(instance.options)


@pytest.mark.parametrize(
    "labels, answers, message",
    [
        (None, "words", "Give the label words"),
        (["1", "2"], "texts", "only scored when the phrasing answers with its label words"),
        (None, "letters-please", "Answers must be one of"),
    ],
)
def test_answers_that_contradict_the_label_words_are_refused(demo, labels, answers, message):
    task = Task.objects.get(slug="larger-number")
    with pytest.raises(ApplicationError) as refused:
        create(task, "{question}\n{options}", labels=labels, answers=answers)
    assert message in " ".join(refused.value.details)


def test_the_same_text_answering_differently_is_another_revision(demo):
    task = Task.objects.get(slug="larger-number")
    phrasing = create(task, "{question} {choiceA} or {choiceB}?")
    first = phrasing.current_revision
    second = services.instruction_revise(instruction=phrasing, template=phrasing.template, answers="texts")
    assert second.pk != first.pk and second.content_hash != first.content_hash
    again = services.instruction_revise(instruction=phrasing, template=phrasing.template)
    assert again.pk == first.pk


def test_a_later_import_adds_input_fields_and_keeps_an_earlier_option_order(demo):
    task = Task.objects.get(slug="larger-number")
    instance = task.instances.first()
    row = {"source_id": instance.source_id, "split": instance.split, "inputs": dict(instance.inputs)}
    reordered = list(reversed(instance.options))
    result = services.instances_upsert(
        task=task,
        rows=[
            row
            | {
                "inputs": instance.inputs | {"input": "the whole input"},
                "options": reordered,
                "gold": reordered.index(instance.options[instance.gold]),
            }
        ],
    )
    assert (result.created, result.widened, result.reordered) == (0, 1, 1)
    instance.refresh_from_db()
    assert instance.inputs["input"] == "the whole input"
    assert instance.options == list(reversed(reordered))  # what past predictions were scored on


def test_an_import_that_changes_an_instances_text_or_gold_is_refused(demo):
    task = Task.objects.get(slug="larger-number")
    instance = task.instances.first()
    row = {"source_id": instance.source_id, "split": instance.split, "options": instance.options}
    changed_text = row | {"inputs": {"question": "another question"}, "gold": instance.gold}
    changed_gold = row | {"inputs": instance.inputs, "gold": 1 - instance.gold}
    for bad in (changed_text, changed_gold):
        with pytest.raises(ApplicationError, match="already exist with different content"):
            services.instances_upsert(task=task, rows=[bad])
    assert Instance.objects.get(pk=instance.pk).inputs == instance.inputs


def test_label_words_with_direction_controls_are_refused(demo):
    task = Task.objects.get(slug="larger-number")
    with pytest.raises(ApplicationError) as refused:
        create(task, "{question}\n1. {choiceA}\n2. {choiceB}", labels=["\u202e1", "2"])
    assert "label words contain invisible text-direction controls (U+202E)" in str(refused.value.details)
