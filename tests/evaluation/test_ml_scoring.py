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


# --- Batching (issue 28): a fixed count on the CPU, a token budget on a GPU or when asked ---------------------


def test_the_cpu_default_is_sixteen_items_per_batch(models):
    loaded = load(ModelSpec(str(models["t5"]), family="seq2seq"), device="cpu")
    stats = scoring.BatchStats()
    batch_items = items(LETTERS) * 2  # 20 items: a batch of 16, then 4
    sizes = [
        len(batch) for batch in scoring.score(loaded, batch_items, ScoreConfig(device="cpu"), stats=stats)
    ]
    assert sizes == [16, 4] and stats.batching == "count"


@pytest.mark.parametrize("arch", ["t5", "gpt2", "llama"])
@pytest.mark.parametrize("options", [LETTERS, WORDS], ids=["single-token", "multi-token"])
def test_token_batching_equals_the_naive_reference(models, arch, options):
    loaded = load(ModelSpec(str(models[arch]), family=FAMILY[arch]), device="cpu")
    batch_items = items(options)
    stats = scoring.BatchStats()
    got = {}
    for batch in scoring.score(loaded, batch_items, ScoreConfig(token_budget=120, device="cpu"), stats=stats):
        got.update(batch)
    assert_equal([got[i] for i in range(len(batch_items))], score_naive(loaded, batch_items))
    assert stats.batching == "tokens" and stats.batches > 2
    assert 0 <= stats.padding_share < 1


def test_a_token_budget_fills_each_batch_up_to_the_budget(models):
    loaded = load(ModelSpec(str(models["gpt2"]), family="causal"), device="cpu")
    encoded = scoring.encode_items(loaded, items(WORDS))
    batches = [
        [index for index, _ in batch]
        for batch in scoring.score(loaded, items(WORDS), ScoreConfig(token_budget=150, device="cpu"))
    ]
    for chunk in batches:
        padded, real = scoring.batch_tokens(encoded, chunk)
        assert padded <= 150 or len(chunk) == 1
        assert real <= padded


def test_the_token_budget_is_found_by_growing_until_memory_runs_out_and_remembered(models, monkeypatch):
    monkeypatch.setattr(scoring, "START_TOKENS", 64)  # a few items, so that it has to grow
    loaded = load(ModelSpec(str(models["gpt2"]), family="causal"), device="cpu")
    batch_items = [ScoringItem("Answer:", f" question {i} {'word ' * (i % 7)}", WORDS) for i in range(200)]
    want = fast(loaded, batch_items)
    scoring.forget_token_budgets()
    config = ScoreConfig(batching="tokens", device="cpu")
    loaded.model = OutOfMemoryAbove(loaded.model, limit=20)  # rows of a forward pass
    try:
        stats = scoring.BatchStats()
        for _ in range(3):
            got = {}
            for batch in scoring.score(loaded, batch_items, config, stats=stats):
                got.update(batch)
        budget = scoring.token_budget_for(loaded)
        assert stats.out_of_memory >= 1 and budget.found
        assert budget.tokens <= budget.fits < budget.fails
        assert scoring.START_TOKENS < budget.fails  # it grew before memory said no
        assert_equal([got[i] for i in range(len(batch_items))], want)
        # Remembered per model: the next call starts from the found budget and runs out of memory no more.
        stats = scoring.BatchStats()
        list(scoring.score(loaded, batch_items, config, stats=stats))
        assert stats.out_of_memory == 0 and stats.token_budget == budget.tokens
    finally:
        scoring.forget_token_budgets()


def test_a_found_budget_shrinks_when_a_batch_as_large_as_one_that_ran_does_not():
    budget = scoring.TokenBudget(1000, find=True)
    budget.ran(1000)
    assert budget.tokens == 2000  # growing
    budget.ran_out(2000)
    assert budget.tokens == 1500 and not budget.found  # bisecting between what ran and what did not
    budget.ran(1500)
    budget.ran_out(1800)
    assert budget.found and budget.tokens == int(1500 * scoring.MARGIN)
    budget.ran_out(1200)  # smaller than what ran before: shapes differ; trust half of it
    assert budget.fits == 600 and budget.tokens < 1200


def test_a_found_budget_keeps_the_items_that_fit_where_a_few_long_items_fill_the_memory():
    # Items of 1,500 padded tokens, memory for two: three ran out, and no budget falls between two and three.
    # The search then stays between them, with two a batch and no more out-of-memory, rather than settling
    # 20% below two items, at one.
    budget = scoring.TokenBudget(4096, find=True)
    memory, cost, taken, ran_out = 3500, 1500, [], 0
    for _ in range(12):
        items = max(1, budget.tokens // cost)
        taken.append(items)
        if items * cost <= memory:
            budget.ran(items * cost)
        else:
            budget.ran_out(items * cost)
            ran_out += 1
    assert taken[-8:] == [2] * 8 and ran_out == 2 and not budget.found
    assert (budget.fits, budget.fails) == (3000, 4500)


def test_batching_settings_validate_themselves():
    assert ScoreConfig().batching_on("cpu") == "count" and ScoreConfig().batching_on("cuda") == "tokens"
    assert ScoreConfig(batch_size=8).batching_on("cuda") == "count"
    assert ScoreConfig(token_budget=512).batching_on("cpu") == "tokens"
    with pytest.raises(ConfigError, match="batching"):
        ScoreConfig(batching="rows")
    with pytest.raises(ConfigError, match="batch_size"):
        ScoreConfig(batching="tokens", batch_size=8)
    with pytest.raises(ConfigError, match="token_budget"):
        ScoreConfig(token_budget=0)


# --- Host work per batch (issue 28) -------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["t5", "gpt2", "llama"])
@pytest.mark.parametrize(
    "config",
    [ScoreConfig(batch_size=3, device="cpu"), ScoreConfig(token_budget=150, device="cpu")],
    ids=["count", "tokens"],
)
def test_one_device_to_host_transfer_per_batch(models, arch, config, monkeypatch):
    import torch

    loaded = load(ModelSpec(str(models[arch]), family=FAMILY[arch]), device="cpu")
    batch_items = items(WORDS)  # multi-token options: the second pass's sums come back with the first tokens'
    list(scoring.score(loaded, batch_items, config))  # warm-up: encoded items are remembered
    calls, counting = [], [True]
    for name in ("item", "tolist", "cpu"):
        original = getattr(torch.Tensor, name)

        def counted(tensor, *args, _name=name, _original=original, **kwargs):
            if counting[0]:
                calls.append(_name)
            return _original(tensor, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    # The shared prefix's pass runs once per phrasing, not per batch; GPT-2's forward looks for padding in
    # its ids there (transformers' warn_if_padding_and_no_attention_mask, an .item()). Not counted.
    prefix = scoring._causal_prefix

    def uncounted(*args):
        counting[0] = False
        try:
            return prefix(*args)
        finally:
            counting[0] = True

    monkeypatch.setattr(scoring, "_causal_prefix", uncounted)
    batches = 0
    for _ in scoring.score(loaded, batch_items, config):
        batches += 1
    assert batches > 1 and calls == ["tolist"] * batches


def test_a_batch_is_launched_before_the_one_before_it_is_fetched(models, monkeypatch):
    loaded = load(ModelSpec(str(models["gpt2"]), family="causal"), device="cpu")
    events = []
    launch = scoring._causal_batch

    def launched(*args):
        events.append("launch")
        finish = launch(*args)
        return lambda: events.append("fetch") or finish()

    monkeypatch.setattr(scoring, "_causal_batch", launched)
    fast(loaded, items(LETTERS), batch_size=2)  # two phrasings of five items: three batches each
    assert events[:3] == ["launch", "launch", "fetch"] and events[-1] == "fetch"
    assert events.count("launch") == events.count("fetch") == 6


def test_items_are_tokenized_once_for_models_that_share_a_tokenizer(models, monkeypatch):
    from evaluation.ml import encoding

    encoding.forget_encoders()
    first = load(ModelSpec(str(models["llama"]), family="causal"), device="cpu")
    second = load(ModelSpec(str(models["llama"]), family="causal"), device="cpu")  # another copy, same files
    assert first.tokenizer is not second.tokenizer
    want = fast(first, items(WORDS))
    calls = []
    monkeypatch.setattr(
        encoding.Encoder, "encode", lambda self, *a: calls.append(a) or pytest.fail("tokenized again")
    )
    assert_equal(fast(second, items(WORDS)), want)
    assert calls == []
