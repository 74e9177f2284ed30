"""The format table (evaluation/ml/prompts.FORMATS): what each format makes of a prompt. A format added to the
table needs its case in WRAPPED here (test_every_format_has_a_case); the study's Alpaca prompts are checked
against the study's own in tests/collection/test_study_fidelity.py."""

from __future__ import annotations

import pytest

from evaluation.ml import prompts
from evaluation.models import LanguageModel, ModelState
from evaluation.prompt_formats import preview_wrapper

SHARED, REST = "Is the number", " 14 even?\nAnswer:"
# What each format makes of (SHARED, REST), for the tiny Llama's tokenizer (tests/evaluation/tiny.py): its
# chat template writes the BOS token, the user's turn, and the assistant's turn to answer in.
WRAPPED = {
    "none": (SHARED, REST),
    "alpaca": (prompts.ALPACA_HEADER + SHARED, REST + prompts.ALPACA_FOOTER),
    "chat": ("<s><|user|>\n" + SHARED, REST + "\n<|assistant|>\n"),
}


@pytest.fixture(scope="module")
def tokenizer(tiny_models):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_models["llama"]))


def test_every_format_has_a_case():
    assert set(WRAPPED) == set(prompts.FORMATS)


@pytest.mark.parametrize("name", prompts.FORMATS)
def test_each_format_wraps_a_prompt_keeping_the_shared_part_shared(tokenizer, name):
    assert prompts.wrap(SHARED, REST, name, tokenizer) == WRAPPED[name]


def test_an_unknown_format_is_refused():
    with pytest.raises(ValueError, match="Unknown prompt format 'vicuna'"):
        prompts.wrap(SHARED, REST, "vicuna")


@pytest.mark.parametrize("name", [f.name for f in prompts.FORMATS.values() if not f.uses_chat_template])
def test_the_preview_wraps_a_format_without_a_chat_template_as_the_scorer_does(name):
    # Such a format needs no tokenizer, so the web process applies it as it is.
    model = LanguageModel(name="m", family="causal", prompt_format=name, state=ModelState.READY)
    wrap, shown, note = preview_wrapper(model)
    assert (wrap(SHARED, REST), shown, note) == (WRAPPED[name], name, "")
