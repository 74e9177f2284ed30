"""The fast scoring paths equal the naive reference (one forward per prompt and option) to 1e-4."""

from __future__ import annotations

import warnings

import pytest

from evaluation.ml import scoring
from evaluation.ml.config import ConfigError, ModelSpec, ScoreConfig
from evaluation.ml.errors import ModelLoadError, OutOfMemoryAtBatchSizeOne
from evaluation.ml.loading import load
from evaluation.ml.reference import score_naive
from evaluation.ml.scoring import ScoringItem
from tests.evaluation.tiny import OutOfMemoryAbove

FAMILY = {"t5": "seq2seq", "gpt2": "causal", "llama": "causal"}
QUESTIONS = [
    "Is 14 even?",
    "Which word does not belong: apple, banana, carrot, grape?",
    "Is the review 'a wonderful, moving film' positive?",
    "7",
    "A much longer question that goes on and on so that batches carry padding of different lengths here.",
]


@pytest.fixture
def models(tiny_models):
    return tiny_models


def items(options: tuple[str, ...]) -> list[ScoringItem]:
    # Two phrasings, so the causal path has two shared prefixes; one phrasing ends in whitespace.
    out = []
    for q in QUESTIONS:
        out.append(ScoringItem("Answer the question.\n\nQuestion:", f" {q}\nAnswer:", options))
        out.append(ScoringItem("Read this:", f" {q}\nThe answer is ", options))
    return out


LETTERS = ("A", "B", "C", "D")
WORDS = ("yes", "no", "it depends on the wording", "positive")


def fast(loaded, batch_items, batch_size=3):
    results = {}
    for batch in scoring.score(loaded, batch_items, ScoreConfig(batch_size=batch_size, device="cpu")):
        for index, scores in batch:
            assert index not in results
            results[index] = scores
    return [results[i] for i in range(len(batch_items))]


def assert_equal(got, want):
    diffs = [
        abs(a - b) for g, w in zip(got, want, strict=True) for a, b in zip(g.logliks, w.logliks, strict=True)
    ]
    assert max(diffs) <= 1e-4, max(diffs)
    assert [g.lengths for g in got] == [w.lengths for w in want]
    assert [g.predicted for g in got] == [w.predicted for w in want]


@pytest.mark.parametrize("arch", ["t5", "gpt2", "llama"])
@pytest.mark.parametrize("options", [LETTERS, WORDS], ids=["single-token", "multi-token"])
def test_fast_path_equals_naive_reference(models, arch, options):
    loaded = load(ModelSpec(str(models[arch]), family=FAMILY[arch]), device="cpu")
    batch_items = items(options)
    want = score_naive(loaded, batch_items)
    assert_equal(fast(loaded, batch_items), want)
    assert_equal(fast(loaded, batch_items, batch_size=64), want)


def test_letters_are_single_tokens_for_the_tiny_tokenizer(models):
    # Guards the single-token tests above: if the tokenizer split letters, they would test the wrong path.
    loaded = load(ModelSpec(str(models["t5"]), family="seq2seq"), device="cpu")
    encoded = scoring.encode_items(loaded, items(LETTERS))
    assert all(len(o) == 1 for item in encoded for o in item.option_ids)
    assert any(len(o) > 1 for item in scoring.encode_items(loaded, items(WORDS)) for o in item.option_ids)


@pytest.mark.parametrize("prompt_format", ["alpaca", "chat"])
def test_prompt_formats_keep_fast_and_naive_equal(models, prompt_format):
    loaded = load(ModelSpec(str(models["llama"]), family="causal", prompt_format=prompt_format), device="cpu")
    batch_items = items(WORDS)
    assert_equal(fast(loaded, batch_items), score_naive(loaded, batch_items))


def test_causal_prefix_is_computed_once_per_phrasing(models, monkeypatch):
    loaded = load(ModelSpec(str(models["gpt2"]), family="causal"), device="cpu")
    calls = []
    original = scoring._causal_prefix
    monkeypatch.setattr(scoring, "_causal_prefix", lambda lm, ids: calls.append(ids) or original(lm, ids))
    fast(loaded, items(LETTERS))
    assert len(calls) == 2  # two phrasings, ten instances


def test_chat_format_has_one_bos(models):
    loaded = load(ModelSpec(str(models["llama"]), family="causal", prompt_format="chat"), device="cpu")
    encoded = scoring.encode_items(loaded, items(LETTERS))[0]
    assert encoded.shared_ids.count(loaded.tokenizer.bos_token_id) == 1


def test_batch_size_backs_off_on_out_of_memory(models):
    loaded = load(ModelSpec(str(models["t5"]), family="seq2seq"), device="cpu")
    batch_items = items(WORDS)
    want = score_naive(loaded, batch_items)
    loaded.model = OutOfMemoryAbove(loaded.model, limit=4)  # the option rows of one item fit, two do not
    assert_equal(fast(loaded, batch_items, batch_size=8), want)


def test_out_of_memory_at_batch_size_one_is_a_readable_error(models):
    loaded = load(ModelSpec(str(models["gpt2"]), family="causal"), device="cpu")
    loaded.model = OutOfMemoryAbove(loaded.model, limit=0)
    with pytest.raises(OutOfMemoryAtBatchSizeOne, match="even at batch size 1"):
        fast(loaded, items(LETTERS), batch_size=4)


def test_a_missing_model_directory_is_a_load_error(tmp_path):
    with pytest.raises(ModelLoadError, match="No model directory"):
        load(ModelSpec(str(tmp_path / "nowhere"), family="causal"))


def test_a_directory_without_a_model_is_a_load_error(tmp_path):
    with pytest.raises(ModelLoadError, match="Could not load"):
        load(ModelSpec(str(tmp_path), family="seq2seq"))


def test_specs_validate_themselves():
    with pytest.raises(ConfigError, match="family"):
        ModelSpec("x", family="encoder-only")
    with pytest.raises(ConfigError, match="batch_size"):
        ScoreConfig(batch_size=0)


@pytest.mark.parametrize("arch", ["t5", "gpt2", "llama"])
def test_the_cache_is_passed_as_transformers_expects(models, arch):
    # transformers 5.24 renamed `past_key_values` to `cache` and warns on the old name until it removes it;
    # before 5.24 only the old name exists. evaluation/ml/compat.py picks the installed release's name, and
    # bin/test-lowest runs this on the floor (5.0).
    loaded = load(ModelSpec(str(models[arch]), family=FAMILY[arch]), device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        fast(loaded, items(WORDS))  # every cache path: prefix, context and multi-token options
