"""Input length: a prompt longer than the model's limit is cut (its start by default, its end as the study
did), special tokens and options kept; the fast paths still equal the naive reference on cut prompts; each
prediction says whether its prompt was cut, and a run counts and shows them."""

from __future__ import annotations

import pytest
import torch
from django.urls import reverse

from collection.demo import load_demo
from collection.models import Task
from evaluation.ml import loading
from evaluation.ml.config import ConfigError, ModelSpec
from evaluation.ml.loading import ModelCache, load
from evaluation.ml.reference import score_naive
from evaluation.ml.scoring import ScoringItem, encode_items
from evaluation.models import Prediction, ScoringRun
from evaluation.runs import registry
from tests.evaluation.test_ml_scoring import FAMILY, LETTERS, WORDS, assert_equal, fast

LIMIT = 40  # between the shortest and the longest prompt of items() below, for every tiny model
QUESTIONS = [
    "Is 14 even?",
    "7",
    "Which word does not belong: apple, banana, carrot, grape? Think about which of them is not a fruit.",
    "Is the review 'a wonderful, moving film' positive? The review goes on and on about the film, the actors "
    "and the music, so that its prompt is much longer than the model's input length here.",
]


def items(options: tuple[str, ...]) -> list[ScoringItem]:
    # Two phrasings, so the causal path has two shared prefixes; one ends in whitespace.
    out = []
    for q in QUESTIONS:
        out.append(ScoringItem("Answer the question.\n\nQuestion:", f" {q}\nAnswer:", options))
        out.append(ScoringItem("Read this:", f" {q}\nThe answer is ", options))
    return out


def loaded_model(tiny_models, arch, **spec):
    return load(ModelSpec(str(tiny_models[arch]), family=FAMILY[arch], **spec), device="cpu")


def prompt_ids(encoded) -> list[int]:
    return [*encoded.shared_ids, *encoded.rest_ids]


def room_for_options(loaded, encoded) -> int:
    """Tokens a causal model reads after the prompt: every option token but the last."""
    return 0 if loaded.spec.family == "seq2seq" else max(len(o) for o in encoded.option_ids) - 1


# --- What is cut -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["t5", "gpt2", "llama"])
@pytest.mark.parametrize("side", ["keep_end", "cut_end"])
@pytest.mark.parametrize("options", [LETTERS, WORDS], ids=["single-token", "multi-token"])
def test_the_fast_paths_equal_the_reference_on_cut_prompts(tiny_models, arch, side, options):
    loaded = loaded_model(tiny_models, arch, max_input_tokens=LIMIT, truncation=side)
    batch_items = items(options)
    encoded = encode_items(loaded, batch_items)
    cut = [e.truncated for e in encoded]
    assert any(cut) and not all(cut)  # both kinds of item in one batch
    assert all(len(prompt_ids(e)) + room_for_options(loaded, e) <= LIMIT for e in encoded)
    want = score_naive(loaded, batch_items)
    assert_equal(fast(loaded, batch_items), want)
    assert_equal(fast(loaded, batch_items, batch_size=64), want)
    assert [s.truncated for s in fast(loaded, batch_items)] == [s.truncated for s in want] == cut
    # And cutting changed what was scored: the same model without a limit scores the cut items otherwise.
    whole = score_naive(loaded_model(tiny_models, arch), batch_items)
    for was_cut, a, b in zip(cut, want, whole, strict=True):
        diff = max(abs(x - y) for x, y in zip(a.logliks, b.logliks, strict=True))
        assert (diff > 1e-4) == was_cut, (was_cut, diff)


@pytest.mark.parametrize("arch", ["t5", "gpt2", "llama"])
def test_cut_end_is_the_tokenizers_own_truncation(tiny_models, arch):
    # The study's call: tokenizer(text, truncation=True, max_length=N) cuts the end and keeps the special
    # tokens it adds (T5's closing </s>, Llama's opening <s>).
    loaded = loaded_model(tiny_models, arch, max_input_tokens=LIMIT, truncation="cut_end")
    batch_items = items(WORDS)
    for item, encoded in zip(batch_items, encode_items(loaded, batch_items), strict=True):
        length = LIMIT - room_for_options(loaded, encoded)
        text = (item.shared + item.rest).rstrip()
        assert prompt_ids(encoded) == loaded.tokenizer(text, truncation=True, max_length=length)["input_ids"]


@pytest.mark.parametrize("arch", ["t5", "gpt2", "llama"])
def test_keep_end_drops_the_start_and_keeps_the_special_tokens(tiny_models, arch):
    loaded = loaded_model(tiny_models, arch, max_input_tokens=LIMIT)
    whole = encode_items(loaded_model(tiny_models, arch), items(WORDS))
    for full, encoded in zip(whole, encode_items(loaded, items(WORDS)), strict=True):
        full_ids, ids = prompt_ids(full), prompt_ids(encoded)
        length = LIMIT - room_for_options(loaded, encoded)
        assert encoded.option_ids == full.option_ids  # options are never cut
        if len(full_ids) <= length:
            assert (ids, encoded.truncated) == (full_ids, False)
        elif arch == "llama":  # the BOS token stays in front
            assert ids == [loaded.tokenizer.bos_token_id, *full_ids[1 - length :]]
        else:  # T5's </s> is the last token anyway; GPT-2 adds none
            assert ids == full_ids[-length:]
            assert arch != "t5" or ids[-1] == loaded.tokenizer.eos_token_id


@pytest.mark.parametrize("arch", ["t5", "gpt2"])
def test_a_soft_prompts_virtual_tokens_count_against_the_limit(tiny_models, arch):
    loaded = loaded_model(tiny_models, arch, max_input_tokens=LIMIT)
    hidden = loaded.model.get_input_embeddings().weight.shape[1]
    loaded.soft_prompt = torch.randn(5, hidden, generator=torch.Generator().manual_seed(0)) * 0.1
    batch_items = items(WORDS)
    encoded = encode_items(loaded, batch_items)
    assert any(e.truncated for e in encoded)
    assert all(5 + len(prompt_ids(e)) + room_for_options(loaded, e) <= LIMIT for e in encoded)
    assert_equal(fast(loaded, batch_items), score_naive(loaded, batch_items))


def test_a_prompt_longer_than_the_model_takes_is_scored_once_cut_to_its_length(tiny_models):
    # Tiny GPT-2 has 512 positions: without a limit a longer prompt cannot be read at all.
    long = [ScoringItem("Read this:", " apple banana carrot grape" * 200 + "\nAnswer:", WORDS)]
    with pytest.raises(IndexError):
        score_naive(loaded_model(tiny_models, "gpt2"), long)
    loaded = loaded_model(tiny_models, "gpt2", max_input_tokens=512)
    want = score_naive(loaded, long)
    assert want[0].truncated
    assert_equal(fast(loaded, long), want)


def test_a_limit_with_no_room_for_the_prompts_text_is_a_config_error(tiny_models):
    with pytest.raises(ConfigError, match="max_input_tokens"):
        encode_items(loaded_model(tiny_models, "t5", max_input_tokens=1), items(LETTERS))  # </s> alone
    with pytest.raises(ConfigError, match="max_input_tokens"):
        encode_items(loaded_model(tiny_models, "llama", max_input_tokens=3), items(WORDS))  # the options
    for bad in [dict(max_input_tokens=0), dict(truncation="middle")]:
        with pytest.raises(ConfigError):
            ModelSpec("x", **bad)


def test_one_warm_model_serves_every_input_limit(tiny_models, monkeypatch):
    loads = []
    monkeypatch.setattr(loading, "load", lambda spec, device: loads.append(spec) or load(spec, device))
    cache = ModelCache()
    plain = ModelSpec(str(tiny_models["t5"]), family="seq2seq")
    limited = ModelSpec(plain.source, family="seq2seq", max_input_tokens=LIMIT, truncation="cut_end")
    assert cache.get(plain, "cpu").spec == plain
    warm = cache.get(limited, "cpu")
    assert warm.spec == limited and warm.model is cache.get(plain, "cpu").model
    assert len(loads) == 1
    cache.get(ModelSpec(str(tiny_models["gpt2"]), family="causal"), "cpu")
    assert len(loads) == 2


# --- Runs and pages ----------------------------------------------------------------------------------------

RUN_LIMIT = 40  # the demo's prompts run from 14 to over 100 tiny-T5 tokens


@pytest.fixture
def demo(db):
    load_demo()
    Task.objects.filter(benchmark__slug="demo").update(eval_sample_size=5)


def register(tiny_models, name, **kwargs):
    return registry.language_model_register(
        name=name, source=str(tiny_models["t5"]), family="seq2seq", check_now=True, **kwargs
    )


@pytest.mark.parametrize("side", ["keep_end", "cut_end"])
def test_a_run_marks_the_cells_it_cut_counts_them_and_its_page_shows_them(
    demo, tiny_models, client, django_capture_on_commit_callbacks, side
):
    with django_capture_on_commit_callbacks(execute=True):
        cut = register(tiny_models, "t5-cut", max_input_tokens=RUN_LIMIT, truncation=side)
        whole = register(tiny_models, "t5-whole")
    assert (cut.max_input_tokens, cut.truncation) == (RUN_LIMIT, side)
    assert whole.max_input_tokens is None  # T5 states no length: nothing is cut
    predictions = Prediction.objects.filter(variant__model=cut)
    flagged = predictions.filter(truncated=True)
    assert 0 < flagged.count() < predictions.count()
    assert not Prediction.objects.filter(variant__model=whole, truncated=True).exists()
    runs = ScoringRun.objects.filter(variant__model=cut)
    for run in runs:
        assert run.truncated_cells == flagged.filter(run=run).count()
        assert run.config["model"]["max_input_tokens"] == RUN_LIMIT
        assert run.config["model"]["truncation"] == side
    # The flag is right: the same weights score a cell alike with and without the limit unless it was cut.
    uncut = {(p.revision_id, p.instance_id): p.logliks for p in whole.variants.get().predictions.all()}
    for p in predictions:
        diff = max(abs(a - b) for a, b in zip(p.logliks, uncut[p.revision_id, p.instance_id], strict=True))
        assert (diff > 1e-4) == p.truncated, (p.truncated, diff)

    shown = runs.filter(truncated_cells__gt=0).first()
    page = client.get(reverse("run_detail", args=[shown.id])).content.decode()
    assert f"Truncated: {shown.truncated_cells} of the cells it computed" in page
    assert f"input length of {RUN_LIMIT} tokens" in page
    assert ("its end was cut" if side == "cut_end" else "its start was dropped") in page
    fragment = client.get(reverse("run_detail", args=[shown.id]), HTTP_HX_REQUEST="true").content.decode()
    assert f"Truncated: {shown.truncated_cells}" in fragment
    clean = ScoringRun.objects.filter(variant__model=whole).first()
    assert "Truncated:" not in client.get(reverse("run_detail", args=[clean.id])).content.decode()


def test_the_model_page_shows_its_input_length_and_side(demo, tiny_models, client):
    register(tiny_models, "t5-cut", max_input_tokens=RUN_LIMIT, truncation="cut_end", score=False)
    register(tiny_models, "t5-whole", score=False)
    page = client.get(reverse("model_detail", args=["t5-cut"])).content.decode()
    assert f"up to {RUN_LIMIT} tokens" in page and "cut the end (the study&#x27;s)" in page
    page = client.get(reverse("model_detail", args=["t5-whole"])).content.decode()
    assert "no limit stated: prompts are never cut" in page
