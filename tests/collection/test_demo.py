from collections import Counter

import pytest
from django.core.management import call_command

from collection import templating
from collection.demo import EVAL_PER_TASK, GENERATED_PER_TASK, TRAIN_PER_TASK
from collection.models import Instance, Instruction, Task

pytestmark = pytest.mark.django_db


def test_the_demo_has_learnable_tasks_with_observed_and_crowd_phrasings():
    call_command("load_demo", "--generated", str(GENERATED_PER_TASK))
    tasks = Task.objects.filter(benchmark__slug="demo")
    assert tasks.count() == 4
    for task in tasks:
        splits = Counter(task.instances.values_list("split", flat=True))
        assert splits == {"train": TRAIN_PER_TASK, "eval": EVAL_PER_TASK}
        collections = Counter(task.instructions.values_list("collection__slug", flat=True))
        # Three observed, three hand-written crowd phrasings, and the phrasing generator's.
        assert collections == {"demotune": 3, "crowd": 3, "generated": GENERATED_PER_TASK}
        assert GENERATED_PER_TASK + 6 >= 60
        # Every phrasing renders on every instance, and the gold answer is correct by construction.
        for instance in task.instances.all()[:50]:
            for phrasing in task.instructions.all():
                assert templating.render(phrasing.template, instance.inputs, instance.options)
    parity = Instance.objects.filter(task__slug="parity")
    for instance in parity[:100]:
        even = int(instance.inputs["number"]) % 2 == 0
        assert instance.options[instance.gold] == ("yes" if even else "no")


def test_the_demo_leaves_out_the_generated_phrasings_unless_asked():
    call_command("load_demo")
    assert not Instruction.objects.filter(collection__slug="generated").exists()
    assert Instruction.objects.filter(task__benchmark__slug="demo").count() == 4 * 6


def test_loading_the_demo_twice_adds_nothing():
    call_command("load_demo")
    counts = (Instance.objects.count(), Instruction.objects.count())
    call_command("load_demo")
    assert (Instance.objects.count(), Instruction.objects.count()) == counts


def test_the_demo_instances_are_the_same_on_every_run():
    call_command("load_demo")
    first = list(
        Instance.objects.filter(task__slug="odd-one-out")
        .order_by("source_id")
        .values_list("inputs", "options", "gold")
    )
    Instance.objects.all().delete()
    call_command("load_demo")
    second = list(
        Instance.objects.filter(task__slug="odd-one-out")
        .order_by("source_id")
        .values_list("inputs", "options", "gold")
    )
    assert first == second
