"""`manage.py train_softprompt`, the README's foreground path to a soft prompt: it trains on the training
phrasings, scores the soft prompt and the base model on the held-out ones, and says what it made; a wrong
model or setting is a one-line error that leaves no soft prompt behind."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from core.jobs import JobStatus
from evaluation.models import Prediction, SoftPrompt
from evaluation.runs import scoring

pytestmark = pytest.mark.django_db

TINY = ["--tokens", "2", "--steps", "3", "--instances", "2", "--paraphrases", "1"]


def test_it_trains_then_scores_the_soft_prompt_and_the_base_model_on_the_held_out_phrasings(demo_tiny_t5):
    out = StringIO()
    call_command("train_softprompt", "--model", "tiny-t5", *TINY, stdout=out, stderr=StringIO())
    soft = SoftPrompt.objects.get()
    assert soft.status == JobStatus.SUCCEEDED
    assert soft.config["steps"] == 3 and soft.config["num_virtual_tokens"] == 2
    heldout = set(soft.heldout_revisions.values_list("id", flat=True))
    assert heldout and not heldout & set(soft.training_revisions.values_list("id", flat=True))
    scored = set(Prediction.objects.filter(variant=soft.variant).values_list("revision_id", flat=True))
    assert scored == heldout
    base = scoring.base_variant(demo_tiny_t5)
    assert heldout <= set(Prediction.objects.filter(variant=base).values_list("revision_id", flat=True))
    text = out.getvalue()
    assert f"Soft prompt #{soft.id}: {len(soft.training_revisions.all())} training phrasings" in text
    assert text.rstrip().endswith("Done.")


def test_no_score_trains_only(demo_tiny_t5):
    call_command(
        "train_softprompt", "--model", "tiny-t5", *TINY, "--no-score", stdout=StringIO(), stderr=StringIO()
    )
    soft = SoftPrompt.objects.get()
    assert soft.status == JobStatus.SUCCEEDED
    assert not Prediction.objects.filter(variant=soft.variant).exists()


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--model", "no-such-model"], "No model named 'no-such-model'"),
        (["--model", "tiny-t5", "--steps", "0"], "steps"),
        (["--model", "tiny-t5", "--split-seed", "-1"], "--split-seed must be 0 or more"),
        (["--model", "tiny-t5", "--objective", "telepathy"], "invalid choice: 'telepathy'"),
    ],
)
def test_a_wrong_model_or_setting_is_a_clear_error_and_leaves_no_soft_prompt(
    demo_tiny_t5, arguments, message
):
    with pytest.raises(CommandError, match=message):
        call_command("train_softprompt", *arguments, stdout=StringIO(), stderr=StringIO())
    assert not SoftPrompt.objects.exists()
