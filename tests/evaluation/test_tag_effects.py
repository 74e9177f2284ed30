"""Tagged phrasings against the rest: the estimate and interval (evaluation/stats/tag_effects.py), and the
model page's rows (evaluation/leaderboards/tag_effects.py)."""

import numpy as np
import pytest
from django.core.management import call_command
from django.urls import reverse

from collection.models import Instruction, PhrasingTag
from evaluation.leaderboards.tag_effects import model_tag_effects
from evaluation.stats.tag_effects import MIN_PER_GROUP, tag_effect
from tests.evaluation.published import imported_variant


def test_the_difference_is_the_macro_average_of_per_task_differences():
    effect = tag_effect([([0.8, 0.6], [0.5, 0.5, 0.2]), ([0.4, 0.4], [0.1, 0.3])], samples=500)
    # Task 1: 0.7 - 0.4 = 0.3; task 2: 0.4 - 0.2 = 0.2; macro 0.25.
    assert effect.difference == pytest.approx(0.25)
    assert effect.tagged_avgp == pytest.approx(0.55) and effect.others_avgp == pytest.approx(0.30)
    assert (effect.tasks, effect.tagged, effect.others) == (2, 4, 5)
    assert effect.low <= effect.difference <= effect.high


def test_a_task_counts_only_with_enough_phrasings_on_each_side():
    assert MIN_PER_GROUP == 2
    assert tag_effect([([0.9], [0.1, 0.2, 0.3])]) is None
    effect = tag_effect([([0.9], [0.1, 0.2]), ([0.5, 0.7], [0.5, 0.5])])
    assert effect.tasks == 1 and effect.difference == pytest.approx(0.1)


def test_identical_sides_give_a_zero_width_interval_at_zero():
    effect = tag_effect([([0.5, 0.5], [0.5, 0.5, 0.5])])
    assert effect.difference == 0 and effect.low == 0 and effect.high == 0 and not effect.excludes_zero


def test_the_interval_finds_a_real_effect_and_covers_a_null_one():
    rng = np.random.default_rng(1)

    def tasks(shift):
        return [
            (rng.normal(0.6 + shift, 0.05, 8).clip(0, 1), rng.normal(0.6, 0.05, 12).clip(0, 1))
            for _ in range(10)
        ]

    found = tag_effect(tasks(-0.08), seed=3)
    assert found.excludes_zero and found.high < 0
    covered = sum(not tag_effect(tasks(0.0), samples=400, seed=s).excludes_zero for s in range(40))
    # A 95% interval should cover a null effect about 38 times in 40; 33 leaves room for chance (P < 0.01).
    assert covered >= 33


@pytest.mark.django_db
def test_the_model_page_shows_each_tags_effect(client):
    call_command("load_demo")
    terse = PhrasingTag.objects.get(slug="terse")
    accuracies = {}
    for task_index, task_slug in enumerate(["parity", "sentiment"]):
        phrasings = list(Instruction.objects.filter(task__slug=task_slug, status="approved").order_by("id"))
        for index, instruction in enumerate(phrasings):
            tagged = index < 3
            if tagged:
                instruction.tags.add(terse)
            accuracies[instruction] = (0.4 if tagged else 0.7) + 0.01 * index + 0.02 * task_index
    variant = imported_variant("published-x", accuracies)
    [row] = model_tag_effects(variant.model)
    assert row.tag == terse and row.phrasings == 6 and row.effect.tasks == 2
    # Per task: mean(0.40, 0.41, 0.42) - mean(0.73..0.75 over the others) differs by exactly the design.
    expected = []
    for task_slug in ["parity", "sentiment"]:
        values = [a for i, a in accuracies.items() if i.task.slug == task_slug]
        expected.append(np.mean(values[:3]) - np.mean(values[3:]))
    assert row.effect.difference == pytest.approx(np.mean(expected))
    page = client.get(reverse("model_detail", args=[variant.model.name]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Phrasing tags" in html and "Terse" in html and "excludes 0" in html
