"""Tiny models for tests, built from scratch once per session (random weights, locally trained tokenizer)."""

from __future__ import annotations

from pathlib import Path

import torch

from evaluation.ml.build import build_model, train_tokenizer

CORPUS = [
    "Answer the following question with the letter of the correct option.",
    "Question: Is the number even or odd? Options: A. even B. odd Answer:",
    "Decide whether the review is positive or negative. Review: a wonderful, moving film.",
    "Which of these words does not belong with the others? apple banana carrot grape",
    "Below is an instruction that describes a task. Write a response that appropriately completes the request.",
    "### Instruction: ### Response: yes no maybe positive negative true false",
] * 20

CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def build(arch: str, root: Path) -> Path:
    out = root / arch
    tokenizer = train_tokenizer(
        CORPUS,
        out,
        vocab_size=400,
        add_eos=arch == "t5",
        add_bos=arch == "llama",
        chat_template=CHAT_TEMPLATE if arch == "llama" else None,
    )
    build_model(arch, tokenizer, out, seed=1)
    return out


class OutOfMemoryAbove:
    """Wraps a model so that a forward pass over more than `limit` rows raises CUDA's out-of-memory error."""

    def __init__(self, model, limit):
        self.model, self.limit, self.config = model, limit, model.config

    def __call__(self, **kwargs):
        rows = next(v.shape[0] for k, v in kwargs.items() if k.endswith("input_ids") and v is not None)
        if rows > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.model(**kwargs)

    def get_encoder(self):
        return self.model.get_encoder()


def lm_eval_logliks(loaded, items) -> list[list[float]]:
    """lm-evaluation-harness 0.4.13's log-likelihoods of each item's options on a causal model (skips the test
    where lm_eval is not installed): the rstripped prompt as context, the option after the prompt's trailing
    whitespace or a space as continuation, as bench/scoring.py gives them."""
    import pytest

    lm_eval_hf = pytest.importorskip("lm_eval.models.huggingface")
    from lm_eval.api.instance import Instance

    requests = []
    for item in items:
        prompt = item.shared + item.rest
        context = prompt.rstrip()
        for option in item.options:
            continuation = (prompt[len(context) :] or " ") + option
            requests.append(Instance("loglikelihood", {}, (context, continuation), len(requests)))
    lm = lm_eval_hf.HFLM(pretrained=loaded.model, tokenizer=loaded.tokenizer, backend="causal", batch_size=8)
    flat = iter(ll for ll, _ in lm.loglikelihood(requests, disable_tqdm=True))
    return [[next(flat) for _ in item.options] for item in items]
