"""A causal model reads each prompt and option as the whole text tokenizes, whatever its tokenizer's style.

The scorer used to tokenize a prompt in pieces (the phrasing's shared prefix, the instance's rest, each
option), so that the shared prefix's cache serves every instance. With GPT-2's byte-level BPE the pieces'
ids are the whole text's; with the others they are not: transformers 5's LlamaTokenizer (Llama-2, Alpaca,
Mistral-7B) marks a piece that starts with a line break as a new word, a SentencePiece tokenizer.json loaded
as it is marks every piece (a letter " A" became "\u2581", "\u2581A"), and Llama-3's split pattern joins a
line break to the punctuation before it. These tests build a tiny Llama with each style
(evaluation/ml/build.py's TOKENIZER_STYLES).
"""

from __future__ import annotations

import pytest

from collection.templating import render_parts
from evaluation.ml import scoring
from evaluation.ml.build import TOKENIZER_STYLES, build_model, train_tokenizer
from evaluation.ml.config import ModelSpec, ScoreConfig
from evaluation.ml.encoding import Encoder
from evaluation.ml.families import CAUSAL
from evaluation.ml.loading import load
from evaluation.ml.prompts import FORMATS
from evaluation.ml.reference import score_naive
from evaluation.ml.scoring import ScoringItem
from tests.evaluation.tiny import CORPUS, lm_eval_logliks

# A chat template whose head ends in a blank line, as Llama-3's does ("<|end_header_id|>\n\n"): with a
# phrasing that starts with its placeholder, the shared part (the head) ends in two line breaks.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>\n\n{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n\n{% endif %}"
)

TEMPLATES = [
    # Cut before a line break (the shared prefix ends in punctuation), before a space, and with no lead.
    "Answer the question:\n{question}\nAnswer:",
    "Read this and answer. {question} The answer is",
    "{question}\nOptions: A, B, C or D.\nAnswer:\n",
    "Question: {question}\n\nChoose one:  ",
]
QUESTIONS = ["Is 14 even?", "Which word does not belong: apple, banana, carrot?", "Café, naïve: 漢字?"]
LETTERS = ("A", "B", "C", "D")
WORDS = ("yes", "no", "it depends", "positive")


@pytest.fixture(scope="module")
def styled(tmp_path_factory):
    """A tiny Llama per tokenizer style, its tokenizer trained on text with the line breaks these prompts hold."""
    corpus = CORPUS + [t.format(question=q) + " A B C D yes no" for t in TEMPLATES for q in QUESTIONS] * 5
    corpus += ["A paragraph ends in a blank line.\n\n"] * 20  # so that GPT-2's BPE learns "\n\n"
    out = {}
    for style in TOKENIZER_STYLES:
        folder = tmp_path_factory.mktemp(f"llama-{style}")
        tokenizer = train_tokenizer(
            corpus, folder, vocab_size=450, add_bos=True, chat_template=CHAT_TEMPLATE, style=style
        )
        build_model("llama", tokenizer, folder, seed=1)
        out[style] = folder
    return out


def items(options, templates=TEMPLATES) -> list[ScoringItem]:
    return [ScoringItem(*render_parts(t, {"question": q}), options) for t in templates for q in QUESTIONS]


# The templates that end in a word: their options follow a space. After a trailing line break or a run of
# spaces, that whitespace moves to the options, so a letter is two tokens there (as in the whole text).
ENDING_IN_A_WORD = TEMPLATES[:2]


def whole_text_ids(loaded, item: ScoringItem, option: str) -> list[int]:
    """The ids of the prompt and option as one text, as the model reads running text; the option after the
    prompt's trailing whitespace, or a space (encoding.py's rule, lm-evaluation-harness's)."""
    fmt = FORMATS[loaded.spec.prompt_format]
    shared, rest = fmt.wrap(item.shared, item.rest, loaded.tokenizer)
    prompt = shared + rest
    context = prompt.rstrip()
    text = context + (prompt[len(context) :] or " ") + option
    return loaded.tokenizer(text, add_special_tokens=fmt.adds_special_tokens)["input_ids"]


@pytest.mark.parametrize("prompt_format", ["none", "alpaca", "chat"])
@pytest.mark.parametrize("style", TOKENIZER_STYLES)
def test_the_model_reads_the_whole_texts_ids(styled, style, prompt_format):
    loaded = load(ModelSpec(str(styled[style]), family="causal", prompt_format=prompt_format), device="cpu")
    for options in (LETTERS, WORDS):
        batch = items(options)
        for item, encoded in zip(batch, scoring.encode_items(loaded, batch), strict=True):
            prompt = [*encoded.shared_ids, *encoded.rest_ids]
            for option, option_ids in zip(item.options, encoded.option_ids, strict=True):
                assert prompt + option_ids == whole_text_ids(loaded, item, option), (style, item, option)


@pytest.mark.parametrize("style", TOKENIZER_STYLES)
def test_a_letter_is_one_token_after_the_prompt(styled, style):
    loaded = load(ModelSpec(str(styled[style]), family="causal"), device="cpu")
    encoded = scoring.encode_items(loaded, items(LETTERS, ENDING_IN_A_WORD))
    assert all(len(option) == 1 for item in encoded for option in item.option_ids)


@pytest.mark.parametrize("style", TOKENIZER_STYLES)
def test_the_shared_prefix_still_serves_every_instance(styled, style):
    """Tokenizing whole prompts must not cost the cache: one shared prefix per phrasing, its ids the start of
    every instance's prompt."""
    loaded = load(ModelSpec(str(styled[style]), family="causal"), device="cpu")
    encoded = scoring.encode_items(loaded, items(WORDS))
    per_phrasing = [encoded[i : i + len(QUESTIONS)] for i in range(0, len(encoded), len(QUESTIONS))]
    for template, group in zip(TEMPLATES, per_phrasing, strict=True):
        assert len({e.shared_ids for e in group}) == 1, template
        if not template.startswith("{"):
            assert len(group[0].shared_ids) > 1, template  # more than the BOS token


@pytest.mark.parametrize("style", TOKENIZER_STYLES)
def test_fast_path_equals_naive_and_lm_eval(styled, style):
    """The fast path against the naive reference (both read the encoder's ids), and both against
    lm-evaluation-harness, which tokenizes context and continuation its own way: the whole text, then the
    continuation's tail after as many tokens as the context alone has. (Where a line break before the option
    joins the context's last token, as Llama-3's ":\n", that rule drops the line break: compared on the
    templates that end in a word.)"""
    loaded = load(ModelSpec(str(styled[style]), family="causal"), device="cpu")
    batch = items(LETTERS, ENDING_IN_A_WORD) + items(WORDS, ENDING_IN_A_WORD)
    ours = {}
    for chunk in scoring.score(loaded, batch, ScoreConfig(batch_size=4, device="cpu")):
        ours.update(chunk)
    flat_ours = [ll for i in range(len(batch)) for ll in ours[i].logliks]
    flat_naive = [ll for scores in score_naive(loaded, batch) for ll in scores.logliks]
    flat_theirs = [ll for lls in lm_eval_logliks(loaded, batch) for ll in lls]
    assert max(abs(a - b) for a, b in zip(flat_ours, flat_naive, strict=True)) <= 1e-4
    assert max(abs(a - b) for a, b in zip(flat_ours, flat_theirs, strict=True)) <= 1e-4


@pytest.mark.parametrize("style", TOKENIZER_STYLES)
def test_only_gpt2s_pipeline_is_tokenized_in_pieces(styled, style):
    """The encoder tokenizes in pieces (remembering the shared part and the options) only where that is the
    whole text's ids: the test above checks the byte-level style's pieces against the whole text."""
    loaded = load(ModelSpec(str(styled[style]), family="causal"), device="cpu")
    assert Encoder(loaded.tokenizer, family=CAUSAL).piecewise == (style == "byte-level")
