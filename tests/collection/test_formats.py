"""Formats (collection/formats.py): the layout of a phrasing's options as an axis beside its wording. The
enumerator, separator and order render as declared, as-written is the ordinary rendering, and the gold answer
follows its option under every order, on every task shape the importers make."""

from __future__ import annotations

import itertools

import pytest

from collection import formats, templating
from collection.answers import option_texts
from collection.models import Answers, Task

STUDY = "{question}{options_}\nAnswer:"  # the study's MMLU layout (a newline before each lettered option)
PLAIN = "{question}\n{options}\nAnswer:"


def test_which_templates_take_a_format():
    assert formats.formattable(PLAIN) and formats.formattable(STUDY)
    assert not formats.formattable("{question}\n{options:parens}\nAnswer:")  # a style of its own
    assert not formats.formattable("{question}\nA. {choiceA}\nB. {choiceB}")  # names each option
    assert not formats.formattable("{question}\n{options}\nOr {choiceA}?")
    assert not formats.formattable("Is {number} even?")  # no options listed


def test_the_declared_formats_cover_every_level_and_every_pair_of_levels():
    keys = [f.key for f in formats.ALL]
    assert len(set(keys)) == len(keys) == 7
    for factor, levels in (
        ("enumerator", formats.ENUMERATORS),
        ("separator", formats.SEPARATORS),
        ("order", formats.ORDERS),
    ):
        assert {getattr(f, factor) for f in formats.ALL} == set(levels)
    for a, b in itertools.combinations(("enumerator", "separator", "order"), 2):
        seen = {(getattr(f, a), getattr(f, b)) for f in formats.ALL}
        levels = {name: set(getattr(formats, name.upper() + "S")) for name in (a, b)}
        # Each pair of factors is not confounded: some level of one appears with two levels of the other.
        assert len(seen) > max(len(levels[a]), len(levels[b]))


@pytest.mark.parametrize("template", [PLAIN, STUDY])
def test_as_written_is_the_ordinary_rendering(template):
    inputs, options = {"question": "Which is larger?"}, ["3", "5", "4"]
    positions = formats.order(formats.AS_WRITTEN, 3, "x/1")
    assert positions == [0, 1, 2]
    assert formats.render_parts(
        template, inputs, options, formats.AS_WRITTEN, positions
    ) == templating.render_parts(template, inputs, options)


def test_each_format_lays_out_and_orders_the_options_as_declared():
    options = ["red", "green; or teal", "blue", "black"]
    inputs = {"question": "Pick one."}
    expected_markers = {"letters": "A. ", "parens": "(A) ", "closing": "A) "}
    for fmt in formats.ALL:
        positions = formats.order(fmt, 4, "mmlu/test/7")
        assert sorted(positions) == [0, 1, 2, 3]
        if fmt.order == "given":
            assert positions == [0, 1, 2, 3]
        elif fmt.order == "reversed":
            assert positions == [3, 2, 1, 0]
        # Seeded by the format and the instance's stable id: the same on every call (and database).
        assert positions == formats.order(fmt, 4, "mmlu/test/7")
        shared, rest = formats.render_parts(PLAIN, inputs, options, fmt, positions)
        text = shared + rest
        assert text.startswith("Pick one.\n") and text.endswith("\nAnswer:")
        shown = [options[i] for i in positions]
        assert expected_markers[fmt.enumerator] + shown[0] in text
        assert ("\n" if fmt.separator == "lines" else "; ").join(
            [
                formats.ENUMERATORS[fmt.enumerator].format(letter) + option
                for letter, option in zip("ABCD", shown)
            ]
        ) in text


def test_shuffles_differ_between_instances_and_formats():
    shuffled = [f for f in formats.ALL if f.order == "shuffled"]
    orders = {tuple(formats.order(f, 5, f"t/{i}")) for f in shuffled for i in range(20)}
    assert len(orders) > 10


class _Instance:
    def __init__(self, options, gold):
        self.options, self.gold = options, gold


def _task(answer_format: str, label_space=()) -> Task:
    return Task(answer_format=answer_format, label_space=list(label_space))


class _Revision:
    def __init__(self, labels=None, answers=Answers.TASK):
        self.labels, self.answers = labels, answers


# The task shapes the importers make: MMLU (4 options, letters), BIG-bench multiple choice with a varying
# number of options answered by letter, BIG-bench and JSONL tasks answered with the option text, and label
# words on a lettered task.
SHAPES = [
    ("mmlu letters", _task("letter"), _Revision(), ["w", "x", "y", "z"], 2),
    ("bigbench 5 letters", _task("letter"), _Revision(), ["a1", "a2", "a3", "a4", "a5"], 4),
    ("bigbench 2 letters", _task("letter"), _Revision(), ["yes", "no"], 0),
    ("option texts", _task("letter"), _Revision(answers=Answers.TEXTS), ["cat", "dog", "cow"], 1),
    (
        "label words",
        _task("option_text", ["positive", "negative"]),
        _Revision(labels=["good", "bad"]),
        ["positive", "negative"],
        1,
    ),
    ("positional words", _task("letter"), _Revision(labels=["1", "2", "3"]), ["p", "q", "r"], 2),
]


@pytest.mark.parametrize("name,task,revision,options,gold", SHAPES, ids=[s[0] for s in SHAPES])
def test_the_gold_answer_follows_its_option_under_every_order(name, task, revision, options, gold):
    """A model that always answers the gold option is right under every format once its answer is mapped
    back (answer position p names option positions[p]); one that always answers the first position is
    right only where the gold option is shown first."""
    instance = _Instance(options, gold)
    written = option_texts(task, revision, instance)
    for fmt in formats.ALL:
        positions = formats.order(fmt, len(options), f"{name}/1")
        answers = option_texts(task, revision, instance, positions)
        assert len(answers) == len(options)
        shown_gold = positions.index(gold)
        # Answers tied to an option move with it; answers tied to a place (letters, positional words) stay.
        if revision.answers == Answers.TEXTS or task.answer_format == "option_text":
            assert answers[shown_gold] == written[gold]
        else:
            assert answers == written
        # Map each position's answer back to the option it names.
        assert positions[shown_gold] == gold
        assert (positions[0] == gold) == (shown_gold == 0)


@pytest.mark.django_db
def test_every_format_keeps_gold_on_the_importers_real_tasks(shared_data, tmp_path):
    """MMLU and BIG-bench Lite as the importers store them: under every format each instance's gold option is
    shown where the order puts it, the answers the scorer ranks name the options shown, and mapping the
    position of gold back gives the stored gold index."""
    from django.core.management import call_command

    from collection.models import Instance, InstructionRevision

    subject = tmp_path / "mmlu"
    subject.mkdir()
    (subject / "anatomy_test.csv").write_text(
        (shared_data / "mmlu" / "test" / "anatomy_test.csv").read_text(encoding="utf-8"), encoding="utf-8"
    )
    call_command("import_mmlu", subject)
    call_command("import_bigbench", shared_data / "bigbench_lite_tasks" / "logical_deduction")
    tasks = [t for t in Task.objects.filter(instances__isnull=False).distinct() if t.max_options]
    assert {t.benchmark.slug for t in tasks} == {"mmlu", "bigbench-lite"}
    for task in tasks:
        revision = InstructionRevision(
            template="Question: {" + task.input_fields[0] + "}{options_}\nAnswer:",
            labels=None,
            answers=Answers.TASK,
        )
        instances = list(Instance.objects.filter(task=task)[:25])
        for instance in instances:
            for fmt in formats.ALL:
                positions = formats.order(fmt, len(instance.options), instance.source_id)
                shared, rest = formats.render_parts(
                    revision.template, instance.inputs, instance.options, fmt, positions
                )
                text = shared + rest
                shown = positions.index(instance.gold)
                marker = formats.ENUMERATORS[fmt.enumerator].format(templating.LETTERS[shown])
                assert marker + instance.options[instance.gold] in text, (task, fmt.key)
                answers = option_texts(task, revision, instance, positions)
                assert len(answers) == len(instance.options)
                if task.answer_format == "letter":
                    assert answers[shown] == templating.LETTERS[shown]
                assert positions[shown] == instance.gold
