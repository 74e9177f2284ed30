"""Alpaca's layout: phrasings written for Alpaca-format models are scored by them alone, and wrapped in
Alpaca's with-input prompt; any other phrasing gets Alpaca's no-input prompt."""

import pytest
from django.core.management import call_command

from collection import services
from collection.models import Collection, Instruction, Task
from evaluation.ml import prompts
from evaluation.models import LanguageModel
from evaluation.runs import scoring

pytestmark = pytest.mark.django_db

ALPACA_PHRASING = "Which number is larger?\n\n### Input:\n{question}\n{options:parens}"


def test_alpaca_wraps_a_prompt_with_an_input_block_in_its_with_input_prompt():
    shared, rest = prompts.wrap("Which is larger?", "\n\n### Input:\n(A) 3\n(B) 5", "alpaca")
    assert shared.startswith("Below is an instruction that describes a task, paired with an input")
    assert rest.endswith("\n(B) 5\n\n### Response:")
    plain = "".join(prompts.wrap("Which is larger, 3 or 5?", "", "alpaca"))
    # Alpaca's own no-input prompt (stanford_alpaca PROMPT_DICT), ending at "### Response:".
    assert plain == (
        "Below is an instruction that describes a task. Write a response that appropriately completes the "
        "request.\n\n### Instruction:\nWhich is larger, 3 or 5?\n\n### Response:"
    )


@pytest.fixture
def two_models(db):
    call_command("load_demo")
    task = Task.objects.get(slug="larger-number")
    for name, prompt_format in (("plain", "none"), ("alpaca-like", "alpaca")):
        LanguageModel.objects.create(
            name=name, source=f"hub/{name}", family="causal", prompt_format=prompt_format
        )
    phrasing = services.instruction_create(
        task=task,
        template=ALPACA_PHRASING,
        collection=Collection.objects.get(slug="crowd"),
        source="test",
        prompt_format=Instruction.Format.ALPACA,
        status=Instruction.Status.APPROVED,
    )
    return task, phrasing


def test_a_phrasing_written_for_alpaca_is_scored_by_alpaca_format_models_only(two_models):
    task, phrasing = two_models
    plain, alpaca = LanguageModel.objects.get(name="plain"), LanguageModel.objects.get(name="alpaca-like")
    for_plain = {r.instruction_id for r in scoring.approved_revisions(task, model=plain)}
    for_alpaca = {r.instruction_id for r in scoring.approved_revisions(task, model=alpaca)}
    assert phrasing.id not in for_plain and phrasing.id in for_alpaca
    # Every other phrasing is scored by both.
    assert for_alpaca - for_plain == {phrasing.id}
    runs = scoring.scoring_on_approval(instruction=phrasing)
    assert {run.variant.model.name for run in runs} == {"alpaca-like"}
