"""The app's management commands say a problem the user can fix in one line, never as a traceback."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command, get_commands, load_command_class

from core.management.base import BaseCommand
from evaluation.ml.families import SEQ2SEQ
from evaluation.models import LanguageModel, ModelVariant, ScoringRun, SoftPrompt, VariantKind

APPS = ("core", "collection", "evaluation")


def test_every_command_of_the_app_derives_from_the_base_that_says_refusals_plainly():
    ours = sorted(name for name, app in get_commands().items() if app in APPS)
    assert len(ours) >= 20  # the list is read, not empty
    plain = [
        name for name in ours if not isinstance(load_command_class(get_commands()[name], name), BaseCommand)
    ]
    assert not plain, f"derive these from core.management.base.BaseCommand: {plain}"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "command",
    [
        ["score", "--model", "published"],
        ["calibrate", "--model", "published"],
        ["score_formats", "--model", "published"],
        ["train_softprompt", "--model", "published"],
    ],
)
def test_a_model_of_published_results_only_is_refused_plainly_and_nothing_is_queued(command):
    # `score` used to make it a base variant and a run that failed to load "published results only (...)".
    model = LanguageModel.objects.create(
        name="published", source="published results only (X)", family=SEQ2SEQ.name, is_active=False
    )
    ModelVariant.objects.create(model=model, kind=VariantKind.IMPORTED)
    with pytest.raises(CommandError, match="published carries published results only"):
        call_command(*command)
    assert list(model.variants.values_list("kind", flat=True)) == [VariantKind.IMPORTED]
    assert not ScoringRun.objects.exists()


@pytest.mark.django_db
def test_a_device_that_is_not_one_is_refused_before_anything_is_queued():
    # It used to train until torch refused "gpu", then print a traceback.
    with pytest.raises(CommandError, match="'gpu' is not a device; use auto, cpu, cuda or cuda:N"):
        call_command("train_softprompt", "--model", "any", "--device", "gpu")
    assert not SoftPrompt.objects.exists()
