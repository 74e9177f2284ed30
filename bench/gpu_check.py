"""The GPU check: one command that exercises scoring and soft-prompt training at full size on a CUDA device.

    .venv/bin/python bench/gpu_check.py           # on a CUDA device: about 3-5 minutes on an H200
    .venv/bin/python bench/gpu_check.py --dry     # on the CPU with tiny configs in fp32 (seconds; the test suite runs it)

Nothing is downloaded. Two randomly initialised models with the real configurations, written out below:
Flan-T5-XL (google/flan-t5-xl's config.json: seq2seq, 2.78 B parameters) and a 7B Llama-style causal model
(Llama-2-7B's config.json: 6.74 B parameters), in bf16, with a byte-level BPE tokenizer trained here on the
check's own text (its ids are a subset of the models' 32k vocabularies, so every logit is still computed).
Random weights change nothing that is checked: the work per token, the memory, and whether the fast paths
compute what the naive reference computes. (The output layer is drawn with std 1/sqrt(hidden size), so logits
spread about as a trained model's do, not sqrt(d_model) wide as T5's own initialisation makes them.) For each model:

1. Fast vs naive: the fast scorer (evaluation/ml/scoring.py) and the naive reference (reference.py, one full
   forward per option) on the same items, one-token (letter) and multi-token options. First both in fp32 on
   the device with TF32 off, where they must agree to FP32_TOLERANCE (1e-3, justified below) on every item:
   this is the check that catches a bug. Then both in bf16, judged against those fp32 values: bf16 rounds
   every activation to 8 significant bits, so neither path is exact, but the fast path's error may be at most
   BF16_FACTOR times the naive path's (mean over items of each item's largest error). Predictions must match
   the fp32 winner wherever it leads by more than twice the naive path's bf16 error on the item, plus 0.02.
   The Llama config is checked so twice: with the byte-level tokenizer (prompts tokenized in pieces, as
   GPT-2's pipeline allows) and with a Metaspace one, as transformers 5 loads Llama-2's (prompts tokenized
   whole: README "Scoring conventions"). Throughput and the rest use the byte-level one, as before.
2. Throughput: instances (phrasing x instance cells) per second of the fast scorer, and MFU: matmul FLOPs
   actually needed (2 x the weights each token passes through x the tokens the fast path processes, plus the
   output layer where logits are read; attention scores, a few percent at these lengths, not counted) over
   the time, over the device's dense bf16 peak (989 TFLOP/s for H100/H200; --peak-tflops to override).
3. Soft-prompt training: seconds per optimiser step and peak memory (CUDA max allocated) of
   evaluation/ml/softprompt.py's alignment step (CE + KL + rep), 4 instances x 4 phrasings, 20 virtual tokens.
4. Out-of-memory back-off: on CUDA, the allowed memory is capped a little above what the weights use
   (torch.cuda.set_per_process_memory_fraction) and long prompts are scored from a batch size that cannot fit:
   the scorer must halve its way down and still give the scores of an uncapped run. On the CPU (--dry) an
   out-of-memory error is injected above a number of rows instead, which exercises the same code path.
5. Host work: device-to-host transfers per batch (one), every synchronisation the device reports (CUDA), and
   a torch.profiler table of where a few batches' time goes.
6. lm_eval 0.4.13's HFLM on the same model objects and prompts, if importable (README: carrying the wheels):
   its best throughput over --lm-eval batch sizes, ours/lm_eval, both MFUs, the same token ids, and its
   predictions against the clear fp32 winners.
Throughput runs with the default batching (on CUDA a token budget found for the model) and at a fixed batch.
Exit status 0 when every check passes. --json PATH writes the figures.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import random
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

# The real configurations (from each model's config.json), in code so that nothing is downloaded.
FLAN_T5_XL = dict(
    d_model=2048,
    d_kv=64,
    d_ff=5120,
    num_layers=24,
    num_decoder_layers=24,
    num_heads=32,
    feed_forward_proj="gated-gelu",
    relative_attention_num_buckets=32,
    relative_attention_max_distance=128,
    layer_norm_epsilon=1e-6,
    tie_word_embeddings=False,
    vocab_size=32128,
    dropout_rate=0.0,  # 0.1 in the hub config; training here runs in eval mode anyway
)
LLAMA_7B = dict(
    hidden_size=4096,
    intermediate_size=11008,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=32,
    max_position_embeddings=4096,
    rms_norm_eps=1e-5,
    rope_theta=10000.0,
    hidden_act="silu",
    tie_word_embeddings=False,
    vocab_size=32000,
)
# --dry: the same architectures, tiny.
DRY = {
    "seq2seq": dict(
        FLAN_T5_XL, d_model=64, d_kv=16, d_ff=128, num_layers=2, num_decoder_layers=2, num_heads=4
    ),
    "causal": dict(
        LLAMA_7B,
        hidden_size=64,
        intermediate_size=172,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
    ),
}
NAMES = {"seq2seq": "Flan-T5-XL config", "causal": "Llama-7B config"}
# Dense bf16, no sparsity, by a part of the device's name, the first that matches: the lent H100 is an SXM
# part ("NVIDIA H100 80GB HBM3"); the PCIe and NVL cards run slower clocks.
PEAK_TFLOPS = {
    "H200": 989.0,
    "H100 PCIe": 756.0,
    "H100 NVL": 835.0,
    "H100": 989.0,
    "A100": 312.0,
    "L40S": 362.0,
}

PHRASINGS = [
    ("The following is a question about numbers.", "\n\nQuestion: {q}\n{options}\nAnswer:"),
    ("Answer with the letter of the correct option.", " {q}\n{options}\nThe answer is"),
    ("Question:", " {q}\nChoices:\n{options}\nLetter:"),
    ("Pick the right option.", " {q}\n{options}\nAnswer:"),
]
LETTERS = "ABCD"


def questions(count: int, seed: int = 0, words: int = 0) -> list[tuple[str, list[str], int]]:
    """Synthetic four-option questions; `words` pads each with a long preamble (for the memory check)."""
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        a, b = rng.randrange(100, 999), rng.randrange(100, 999)
        preamble = " ".join(
            rng.choice(["apples", "pears", "in", "a", "basket", "of", "the", "market"]) for _ in range(words)
        )
        options = [f"{a + b + d} apples" for d in rng.sample([0, 1, 2, 3], 4)]
        gold = next(i for i, o in enumerate(options) if o == f"{a + b} apples")
        rows.append(((preamble + " " if words else "") + f"What is {a} plus {b}?", options, gold))
    return rows


def items_for(data, answers: str):
    """ScoringItems of every (phrasing, question): answers are the letters, or the option texts."""
    from evaluation.ml.scoring import ScoringItem

    out = []
    for shared, rest in PHRASINGS:
        for q, options, _ in data:
            listing = "\n".join(f"{LETTERS[i]}. {o}" for i, o in enumerate(options))
            labels = tuple(LETTERS) if answers == "letters" else tuple(options)
            out.append(ScoringItem(shared, rest.format(q=q, options=listing), labels))
    return out


def build(family: str, dry: bool, device: torch.device, workdir: Path, dtype: torch.dtype):
    """A randomly initialised model of the configuration, created on the device in bf16, and a tokenizer."""
    import transformers

    from evaluation.ml.build import train_tokenizer
    from evaluation.ml.config import ModelSpec
    from evaluation.ml.loading import LoadedModel

    corpus = [
        s + r.format(q=q, options=" ".join(o)) for s, r in PHRASINGS for q, o, _ in questions(200, 1, 12)
    ]
    special = dict(add_eos=family == "seq2seq", add_bos=family == "causal")
    tokenizer = train_tokenizer(corpus, workdir / family, vocab_size=2000, **special)
    # The causal model is also checked with Llama-2's tokenizer as transformers 5 loads it (a Metaspace
    # pre-tokenizer), whose prompts the scorer tokenizes whole, not in pieces as the byte-level one's (README
    # "Scoring conventions"): the same model, its ids a subset of the same vocabulary.
    whole = (
        train_tokenizer(
            corpus, workdir / f"{family}-metaspace", vocab_size=2000, style="metaspace", **special
        )
        if family == "causal"
        else None
    )
    dims = DRY[family] if dry else (FLAN_T5_XL if family == "seq2seq" else LLAMA_7B)
    if dry:
        dims = dict(dims, vocab_size=max(len(t) for t in (tokenizer, whole) if t is not None))
    if whole is not None:
        special_ids = [
            [getattr(t, f"{n}_token_id") for n in ("pad", "eos", "bos")] for t in (tokenizer, whole)
        ]
        assert special_ids[0] == special_ids[1], "the two tokenizers' special tokens must have the same ids"
    ids = dict(pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # created in its dtype on the device: a 7B model never exists in fp32
    try:
        with torch.device(device):
            if family == "seq2seq":
                config = transformers.T5Config(decoder_start_token_id=tokenizer.pad_token_id, **ids, **dims)
                model = transformers.T5ForConditionalGeneration(config)
            else:
                config = transformers.LlamaConfig(bos_token_id=tokenizer.bos_token_id, **ids, **dims)
                model = transformers.LlamaForCausalLM(config)
        # T5's initialisation draws the output layer with std 1, which gives logits of spread sqrt(d_model)
        # (45 for XL), far from a trained model's, and bf16 rounding errors to match; scaled to spread ~1.
        head = model.get_output_embeddings().weight
        with torch.no_grad():
            head.normal_(0.0, head.shape[1] ** -0.5)
    finally:
        torch.set_default_dtype(previous)
    model.eval()
    spec = ModelSpec(source=f"(random {NAMES[family]})", family=family, dtype=str(dtype).split(".")[1])
    loaded = LoadedModel(spec=spec, model=model, tokenizer=tokenizer, device=device, dtype=dtype)
    return loaded, whole


@contextmanager
def tokenized_by(loaded, tokenizer):
    """The loaded model with another tokenizer of the same vocabulary, then back to its own."""
    own, loaded.tokenizer = loaded.tokenizer, tokenizer
    try:
        yield loaded
    finally:
        loaded.tokenizer = own


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def fast_scores(loaded, items, batch_size: int | None = None, sizes: list[int] | None = None, stats=None):
    """The fast scorer's option log-likelihoods per item. batch_size None: the default batching (a token
    budget on a GPU, 16 items on the CPU)."""
    from evaluation.ml.config import ScoreConfig
    from evaluation.ml.scoring import score

    out = {}
    config = ScoreConfig(batch_size=batch_size, device=str(loaded.device))
    for batch in score(loaded, items, config, stats=stats):
        if sizes is not None:
            sizes.append(len(batch))
        out.update(batch)
    return [out[i].logliks for i in range(len(items))]


def naive_scores(loaded, items):
    from evaluation.ml.reference import score_naive

    return [s.logliks for s in score_naive(loaded, items)]


@contextmanager
def in_fp32(loaded):
    """The model in fp32 with TF32 off (every matmul in full fp32), then back as it was. bf16 -> fp32 -> bf16
    is lossless, and every tensor goes back to its own dtype (Llama keeps its rotary frequencies in fp32), so
    the model comes back exactly as it was."""
    model, dtype = loaded.model, loaded.dtype

    def tensors():
        return [*model.named_parameters(), *model.named_buffers()]

    original = {name: tensor.dtype for name, tensor in tensors()}
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    precision = (matmul.fp32_precision, cudnn.fp32_precision)  # torch 2.9 and later: TF32 off is "ieee"
    try:  # an out-of-memory while converting leaves the model half fp32: the finally puts it back too
        matmul.fp32_precision = cudnn.fp32_precision = "ieee"
        model.float()
        loaded.dtype = torch.float32
        yield loaded
    finally:
        for name, tensor in tensors():
            tensor.data = tensor.data.to(original[name])
        loaded.dtype = dtype
        matmul.fp32_precision, cudnn.fp32_precision = precision
        if loaded.device.type == "cuda":
            torch.cuda.empty_cache()


# Fast vs naive in fp32 (TF32 off): they compute the same sums in other orders and shapes (a batch with
# padding, a cached prefix, the output layer on gathered rows), so they differ by fp32 rounding only: about
# 1e-7 relative per operation, which over a 32-layer model and a log-likelihood of tens of nats comes to 1e-5
# to 1e-4 (the CPU tests demand 1e-4 of tiny models; the dry run measures 2e-6). 1e-3 leaves room for the
# device's kernels (split-K matmuls, SDPA's tiling) while a bug does not fit in it: attending to padding moves
# log-likelihoods by whole nats, and even a position shifted by one, which random weights (attending almost
# uniformly) barely notice, moved the dry run's tiny Llama by 2e-3 (tests/evaluation/test_gpu_check.py).
FP32_TOLERANCE = 1e-3
# bf16: each path's error is its distance to the fp32 values. The fast path may be off by more than the naive
# one (other shapes round differently) but not by more than this factor, on the mean over items of each
# item's largest error (a mean, since one item's naive error can happen to be near zero). BF16_FLOOR keeps a
# check in fp32 (--dry), where both errors are zero, from failing on nothing.
BF16_FACTOR = 2.0
BF16_FLOOR = 1e-3


def item_error(got, want) -> float:
    return max(abs(a - b) for a, b in zip(got, want, strict=True))


def check_fast_vs_naive(loaded, items, keep: dict | None = None) -> dict:
    """Fast vs naive in fp32, then both paths in the model's dtype against those fp32 values. keep, if given,
    receives the fp32 values and each item's clear-winner margin (for the lm_eval comparison)."""
    low_fast, low_naive = fast_scores(loaded, items), naive_scores(loaded, items)
    with in_fp32(loaded):
        fast32, exact = fast_scores(loaded, items), naive_scores(loaded, items)
    fp32_diffs = [item_error(f, n) for f, n in zip(fast32, exact, strict=True)]
    fast_errors = [item_error(f, e) for f, e in zip(low_fast, exact, strict=True)]
    naive_errors = [item_error(n, e) for n, e in zip(low_naive, exact, strict=True)]
    mean_fast, mean_naive = sum(fast_errors) / len(items), sum(naive_errors) / len(items)
    margins, compared, disagree = [], 0, 0
    for f, e, own in zip(low_fast, exact, naive_errors, strict=True):
        # A clear winner in fp32: its lead is more than twice the naive path's rounding on the item (plus
        # 0.02), so a correct bf16 computation cannot lose it.
        margin = 2 * own + 0.02
        margins.append(margin)
        top = sorted(e, reverse=True)
        if top[0] - top[1] > margin:
            compared += 1
            disagree += argmax(f) != argmax(e)
    if keep is not None:
        keep.update(exact=exact, margins=margins)
    fp32_ok = max(fp32_diffs) <= FP32_TOLERANCE
    low_ok = mean_fast <= BF16_FACTOR * mean_naive + BF16_FLOOR
    return {
        "items": len(items),
        "fp32_max_abs_diff_fast_vs_naive": max(fp32_diffs),
        "fp32_items_over_tolerance": sum(d > FP32_TOLERANCE for d in fp32_diffs),
        "fp32_tolerance": FP32_TOLERANCE,
        "fp32_ok": fp32_ok,
        "max_abs_diff_fast_vs_naive": max(item_error(f, n) for f, n in zip(low_fast, low_naive, strict=True)),
        "max_abs_diff_naive_vs_fp32": max(naive_errors),
        "max_abs_diff_fast_vs_fp32": max(fast_errors),
        "mean_error_naive_vs_fp32": mean_naive,
        "mean_error_fast_vs_fp32": mean_fast,
        "error_factor_allowed": BF16_FACTOR,
        "low_precision_ok": low_ok,
        "clear_predictions_compared": compared,
        "clear_predictions_disagreeing": disagree,
        "ok": fp32_ok and low_ok and disagree == 0,
    }


def argmax(values) -> int:
    return max(range(len(values)), key=values.__getitem__)


def matmul_params(loaded) -> dict[str, int]:
    """Weights a token passes through, by part (embedding lookups are not matmuls)."""
    model = loaded.model
    head = model.get_output_embeddings().weight.numel()
    if loaded.spec.family == "seq2seq":
        encoder = sum(
            p.numel() for n, p in model.encoder.named_parameters() if "embed" not in n and p.dim() == 2
        )
        cross_kv = sum(
            p.numel()
            for n, p in model.decoder.named_parameters()
            if "EncDecAttention.k" in n or "EncDecAttention.v" in n
        )
        decoder = sum(
            p.numel() for n, p in model.decoder.named_parameters() if "embed" not in n and p.dim() == 2
        )
        return {"encoder": encoder, "decoder": decoder - cross_kv, "cross_kv": cross_kv, "head": head}
    body = sum(p.numel() for n, p in model.model.named_parameters() if "embed" not in n and p.dim() == 2)
    return {"body": body, "head": head}


def needed_flops(loaded, items) -> float:
    """Matmul FLOPs the fast path cannot avoid: 2 x weights x tokens processed (shared prefixes once)."""
    from evaluation.ml.scoring import encode_items

    encoded = encode_items(loaded, items)
    params = matmul_params(loaded)
    longer = sum(len(o) - 1 for e in encoded for o in e.option_ids if len(o) > 1)
    if loaded.spec.family == "seq2seq":
        encoder_tokens = sum(len(e.rest_ids) for e in encoded)
        decoder_tokens = (
            len(encoded) + longer
        )  # one step for every first token, then the rest of longer options
        return 2 * (
            params["encoder"] * encoder_tokens
            + params["cross_kv"] * encoder_tokens
            + (params["decoder"] + params["head"]) * decoder_tokens
        )
    shared = sum(len(s) for s in {e.shared_ids for e in encoded})
    tokens = shared + sum(len(e.rest_ids) for e in encoded) + longer
    logit_rows = len(encoded) + longer
    return 2 * (params["body"] * tokens + params["head"] * logit_rows)


def check_throughput(loaded, items, batch_size: int | None, peak_tflops: float | None) -> dict:
    """instances/s and MFU. batch_size None: the default batching (on a GPU, the token budget found for the
    model; the warm-up run starts that search, so the timed run fills batches to what it found)."""
    from evaluation.ml.scoring import BatchStats

    fast_scores(loaded, items if batch_size is None else items[: batch_size * 2], batch_size)  # warm-up
    sync(loaded.device)
    stats = BatchStats()
    start = time.perf_counter()
    fast_scores(loaded, items, batch_size, stats=stats)
    sync(loaded.device)
    seconds = time.perf_counter() - start
    flops = needed_flops(loaded, items)
    return {
        "items": len(items),
        "batch_size": batch_size,
        "batching": stats.batching,
        "token_budget": stats.token_budget,
        "batches": stats.batches,
        "largest_batch": stats.largest_batch,
        "padding_share": stats.padding_share,
        "seconds": seconds,
        "instances_per_s": len(items) / seconds,
        "tflop_needed": flops / 1e12,
        "mfu": (flops / seconds / (peak_tflops * 1e12)) if peak_tflops else None,
    }


class CountTransfers:
    """Counts device-to-host transfers while in use: Tensor.item, .tolist and .cpu on the scored device's
    tensors (in a dry run, the CPU's), and copies from that device into host memory (Tensor.copy_: on a GPU
    the scorer copies each batch's values into pinned memory, then reads them there with .tolist(), which
    is no transfer). Also the waits on CUDA events (`event_waits`), which the sync debug mode does not see."""

    METHODS = ("item", "tolist", "cpu", "copy_")

    def __init__(self, device_type: str = "cpu") -> None:
        self.device_type = device_type
        self.calls = 0
        self.event_waits = 0
        self.saved: dict = {}

    def __enter__(self):
        for name in self.METHODS:
            original = self.saved[name] = getattr(torch.Tensor, name)

            def counted(tensor, *args, _name=name, _original=original, **kwargs):
                if _name != "copy_":
                    self.calls += tensor.device.type == self.device_type
                elif self.device_type != "cpu" and tensor.device.type == "cpu":
                    source = args[0] if args else kwargs.get("other", kwargs.get("src"))
                    self.calls += isinstance(source, torch.Tensor) and source.device.type == self.device_type
                return _original(tensor, *args, **kwargs)

            setattr(torch.Tensor, name, counted)
        if self.device_type == "cuda":
            wait = self.saved["event"] = torch.cuda.Event.synchronize

            def counted_wait(event, _wait=wait):
                self.event_waits += 1
                return _wait(event)

            torch.cuda.Event.synchronize = counted_wait
        return self

    def __exit__(self, *exc) -> None:
        for name, original in self.saved.items():
            if name == "event":
                torch.cuda.Event.synchronize = original
            else:
                setattr(torch.Tensor, name, original)


def check_transfers(loaded, items) -> dict:
    """Device-to-host transfers per batch of the fast scorer (one is the goal: every option's log-likelihood
    gathered on the device and fetched at once). On CUDA, also every synchronisation the device reports
    (torch.cuda.set_sync_debug_mode), which includes those inside transformers (its attention-mask checks),
    and the scorer's waits on its batches' CUDA events, which that mode does not report."""
    from evaluation.ml.scoring import BatchStats

    fast_scores(loaded, items)  # warm-up, outside the count
    stats = BatchStats()
    syncs = None
    with CountTransfers(loaded.device.type) as count, warnings.catch_warnings(record=True) as seen:
        if loaded.device.type == "cuda":
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
        try:
            fast_scores(loaded, items, stats=stats)
        finally:
            if loaded.device.type == "cuda":
                torch.cuda.set_sync_debug_mode("default")
                syncs = sum("synchroniz" in str(w.message).lower() for w in seen) + count.event_waits
    return {
        "batches": stats.batches,
        "transfers": count.calls,
        "transfers_per_batch": count.calls / stats.batches,
        "device_syncs_per_batch": None if syncs is None else syncs / stats.batches,
        "ok": count.calls == stats.batches,
    }


def profile_batches(loaded, items, top: int = 8) -> dict:
    """Where a few batches' time goes: torch.profiler's operators by their own time on the device (CUDA) or
    the host (CPU), and the host's time against the device's."""
    from torch.profiler import ProfilerActivity, profile

    fast_scores(loaded, items)  # warm-up
    cuda = loaded.device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    sync(loaded.device)
    start = time.perf_counter()
    with profile(activities=activities) as prof:
        fast_scores(loaded, items)
        sync(loaded.device)
    wall = time.perf_counter() - start
    events = prof.key_averages()
    key = "self_device_time_total" if cuda else "self_cpu_time_total"
    rows = sorted(events, key=lambda e: getattr(e, key, 0), reverse=True)[:top]
    device_us = sum(getattr(e, "self_device_time_total", 0) for e in events) if cuda else None
    return {
        "items": len(items),
        "wall_s": wall,
        "device_busy_s": None if device_us is None else device_us / 1e6,
        "top": [{"op": e.key, "s": getattr(e, key, 0) / 1e6, "calls": e.count} for e in rows],
    }


def check_training(loaded, data, steps: int, warmup: int) -> dict:
    from evaluation.ml import softprompt
    from evaluation.ml.config import AlignConfig
    from evaluation.ml.scoring import ScoringItem

    def item(phrasing: int, index: int) -> ScoringItem:
        q, options, _ = data[index]
        shared, rest = PHRASINGS[phrasing]
        listing = "\n".join(f"{LETTERS[i]}. {o}" for i, o in enumerate(options))
        return ScoringItem(shared, rest.format(q=q, options=listing), tuple(LETTERS))

    task = softprompt.TrainingTask(
        name="arithmetic",
        phrasings=tuple(range(len(PHRASINGS))),
        anchors=(0,),
        instance_count=len(data),
        item=item,
        gold=lambda index: data[index][2],
    )
    config = AlignConfig(num_virtual_tokens=20, steps=warmup + steps, instances_per_batch=4, paraphrases=3)
    cuda = loaded.device.type == "cuda"
    times: list[float] = []
    mark = [0.0]

    def on_step(step: int, record: dict) -> None:
        now = time.perf_counter()  # train() reads the loss every step, which synchronises the device
        if step == warmup and cuda:
            torch.cuda.reset_peak_memory_stats()
        if step > warmup:
            times.append(now - mark[0])
        mark[0] = now

    if cuda:
        torch.cuda.reset_peak_memory_stats()
    mark[0] = time.perf_counter()
    peft_model, result = softprompt.train(loaded, [task], config, on_step=on_step)
    losses = [r["loss"] for r in result.curve]
    # PEFT wrapped the model in place; scoring goes on with the bare model.
    loaded.model = peft_model.get_base_model()
    times.sort()
    return {
        "seconds_per_step": times[len(times) // 2],
        "steps_timed": len(times),
        "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
        "loss_finite": all(math.isfinite(x) for x in losses),
        "ok": all(math.isfinite(x) for x in losses),
    }


class _InjectOutOfMemory:
    """A forward pre-hook on the input embeddings that fails like CUDA does above `rows` rows or `tokens`
    input tokens (--dry)."""

    def __init__(self, rows: int | None = None, tokens: int | None = None) -> None:
        self.rows, self.tokens = rows, tokens

    def __call__(self, module, args):
        if not args:
            return
        ids = args[0]
        if (self.rows is not None and ids.shape[0] > self.rows) or (
            self.tokens is not None and ids.numel() > self.tokens
        ):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (injected)")


@contextmanager
def scarce_memory(loaded, rows: int | None = None, tokens: int | None = None):
    """On CUDA, memory capped at the weights plus 2 GiB; on the CPU, out-of-memory injected above `rows`
    rows or `tokens` tokens of a forward pass. Yields how."""
    if loaded.device.type == "cuda":
        gc.collect()
        torch.cuda.empty_cache()
        total = torch.cuda.get_device_properties(loaded.device).total_memory
        # The cap is on what the caching allocator reserves, which segments still partly in use keep above
        # what tensors hold: 2 GiB more than that is 2 GiB of headroom.
        allowed = torch.cuda.memory_reserved(loaded.device) + 2 * 2**30
        torch.cuda.set_per_process_memory_fraction(allowed / total)
        try:
            yield f"memory capped at {allowed / 2**30:.1f} GiB"
        finally:
            torch.cuda.set_per_process_memory_fraction(1.0)
            torch.cuda.empty_cache()
        return
    # Every token-embedding lookup (T5's encoder and decoder each hold one): a forward pass starts there.
    vocab = loaded.model.get_input_embeddings().weight.shape[0]
    hooks = [
        module.register_forward_pre_hook(_InjectOutOfMemory(rows, tokens))
        for module in loaded.model.modules()
        if isinstance(module, torch.nn.Embedding) and module.weight.shape[0] == vocab
    ]
    try:
        yield f"out-of-memory injected above {rows} rows" if rows else f"above {tokens} input tokens"
    finally:
        for hook in hooks:
            hook.remove()


def check_backoff(loaded, items, start: int, tolerance: float | None) -> dict:
    """Count batching from a batch size that cannot fit must halve its way down; the automatic token budget,
    searched from scratch, must meet the cap (growing from its start until out of memory) and run out of
    memory no more by its last pass; both with the scores of an uncapped run (within `tolerance`, where it
    is known)."""
    from evaluation.ml.scoring import MARGIN, forget_token_budgets, token_budget_for

    want = fast_scores(loaded, items, batch_size=2)
    sizes: list[int] = []
    with scarce_memory(loaded, rows=max(1, start // 4)) as how:
        got = fast_scores(loaded, items, batch_size=start, sizes=sizes)
    forget_token_budgets()
    # --dry: the tiny prompts need a tiny ceiling, a few of them per batch, for the search to reach it.
    tokens = max(len(e.rest_ids) for e in _encoded(loaded, items)) * 3
    with scarce_memory(loaded, tokens=tokens) as how_tokens:
        got_tokens, passes = _scores_with_found_budget(loaded, items)
    budget = token_budget_for(loaded)
    forget_token_budgets()  # what was found under the cap is not what the device can do
    # The same computation in other batch shapes: within the rounding measured against fp32 above.
    diff = max(abs(a - b) for g, w in zip(got, want, strict=True) for a, b in zip(g, w))
    diff_tokens = max(abs(a - b) for g, w in zip(got_tokens, want, strict=True) for a, b in zip(g, w))
    backed_off = max(sizes) < start
    searched = sum(s.out_of_memory for s in passes)
    return {
        "how": how,
        "start_batch": start,
        "largest_batch_that_ran": max(sizes),
        "max_abs_diff_vs_uncapped": diff,
        "tokens_how": how_tokens,
        "tokens_out_of_memory": searched,
        "tokens_out_of_memory_last_pass": passes[-1].out_of_memory,
        # Found: settled MARGIN below; where a few long items fill the memory the search stays between the
        # items that ran and those that did not (scoring.TokenBudget), which the last pass shows.
        "token_budget_found": budget.found,
        "token_budget": budget.tokens,
        "tokens_largest_batch": passes[-1].largest_batch,
        "tokens_max_abs_diff_vs_uncapped": diff_tokens,
        "tolerance": tolerance,
        "ok": backed_off
        and (tolerance is None or max(diff, diff_tokens) <= tolerance)
        and searched > 0  # the search met the cap ...
        and passes[-1].out_of_memory == 0  # ... stopped running into it ...
        and budget.tokens >= int(MARGIN * budget.fits),  # ... and did not fall far below what ran
    }


def _encoded(loaded, items):
    from evaluation.ml.scoring import encode_items

    return encode_items(loaded, items)


def _scores_with_found_budget(loaded, items, passes: int = 3):
    """Token batching with a found budget (the default on a GPU, asked for on the CPU); scored a few times so
    that the search, which moves only as batches run, has room to settle. Returns the last pass's scores and
    each pass's BatchStats."""
    from evaluation.ml.config import ScoreConfig
    from evaluation.ml.scoring import BatchStats, score

    config = ScoreConfig(batching="tokens", device=str(loaded.device))
    stats = []
    for _ in range(passes):
        out = {}
        stats.append(BatchStats())
        for batch in score(loaded, items, config, stats=stats[-1]):
            out.update(batch)
    return [out[i].logliks for i in range(len(items))], stats


def lm_eval_requests(loaded, items):
    """lm_eval's (context, continuation) requests for the items, as bench/scoring.py builds them: the prompt
    rstripped, the continuation carrying our delimiter (causal) or none (seq2seq), so that lm_eval scores the
    ids ours does (checked by `same_ids`)."""
    from lm_eval.api.instance import Instance

    seq2seq = loaded.spec.family == "seq2seq"
    requests = []
    for item in items:
        prompt = item.shared + item.rest
        context = prompt.rstrip()
        delimiter = "" if seq2seq else (prompt[len(context) :] or " ")
        for option in item.options:
            requests.append(Instance("loglikelihood", {}, (context, delimiter + option), len(requests)))
    return requests


def lm_eval_scores(lm, loaded, items) -> list[tuple[float, ...]]:
    out = [ll for ll, _ in lm.loglikelihood(lm_eval_requests(loaded, items), disable_tqdm=True)]
    scores, at = [], 0
    for item in items:
        scores.append(tuple(out[at : at + len(item.options)]))
        at += len(item.options)
    return scores


def lm_eval_flops(loaded, items) -> float:
    """The matmul work lm_eval 0.4.13 does, padding aside (bench/scoring.py's count): seq2seq, a full encoder
    and decoder pass per (item, option); causal, a pass over context + option[:-1] with logits at every
    position, once per distinct context + option[:-1] (its one-token-continuation cache)."""
    params = matmul_params(loaded)
    total = 0
    for e in _encoded(loaded, items):
        if loaded.spec.family == "seq2seq":
            total += sum(
                (params["encoder"] + params["cross_kv"]) * len(e.rest_ids)
                + (params["decoder"] + params["head"]) * len(o)
                for o in e.option_ids
            )
        else:
            context = len(e.shared_ids) + len(e.rest_ids)
            continuations = {tuple(o[:-1]) for o in e.option_ids}
            total += sum((params["body"] + params["head"]) * (context + len(c)) for c in continuations)
    return 2.0 * total


def check_lm_eval(loaded, check_sets, timed_sets, ours: dict, batch_sizes, peak_tflops) -> dict:
    """lm_eval's HFLM on the same model object and prompts: its best throughput over `batch_sizes` against
    ours, both MFUs, and its predictions against the fp32 winner wherever that is clear (check_fast_vs_naive's
    margins). Skipped, with the reason, when lm_eval is not installed."""
    try:
        from lm_eval.models.huggingface import HFLM
    except (
        Exception
    ) as exc:  # not installed, or a need of its own missing on this machine: bin/gpu-check says so
        return {
            "skipped": f"lm_eval does not import ({type(exc).__name__}: {exc}); see README, GPU check, for the wheels"
        }
    out: dict = {"batch_sizes": [str(b) for b in batch_sizes]}
    compared = disagree = 0
    same = True
    lms = {}
    for size in batch_sizes:
        lms[size] = HFLM(
            pretrained=loaded.model,
            tokenizer=loaded.tokenizer,
            backend=loaded.spec.family,
            batch_size=size,
            max_batch_size=512,
        )
    first = lms[batch_sizes[0]]
    for items, keep in check_sets:
        same = same and all(
            first._encode_pair(r.args[0], r.args[1]) == (list(e.shared_ids) + e.rest_ids, o)
            for r, (e, o) in zip(
                lm_eval_requests(loaded, items),
                [(e, o) for e in _encoded(loaded, items) for o in e.option_ids],
                strict=True,
            )
        )
        if "exact" not in keep:  # its fast-vs-naive check raised: no fp32 winners to hold lm_eval against
            continue
        theirs = lm_eval_scores(first, loaded, items)
        for t, e, margin in zip(theirs, keep["exact"], keep["margins"], strict=True):
            top = sorted(e, reverse=True)
            if top[0] - top[1] > margin:
                compared += 1
                disagree += argmax(t) != argmax(e)
    out |= {
        "same_ids": same,
        "clear_predictions_compared": compared,
        "clear_predictions_disagreeing": disagree,
    }
    for case, items in timed_sets.items():
        best = None
        for size, lm in lms.items():
            lm_eval_scores(lm, loaded, items[: len(items) // 4 or 1])  # warm-up (and "auto"'s search)
            sync(loaded.device)
            start = time.perf_counter()
            lm_eval_scores(lm, loaded, items)
            sync(loaded.device)
            seconds = time.perf_counter() - start
            if best is None or seconds < best[1]:
                best = (str(size), seconds)
        flops = lm_eval_flops(loaded, items)
        rate = len(items) / best[1]
        mine = ours.get(case) or {}  # empty where our throughput check raised: lm_eval's own figures stand
        out[case] = {
            "best_batch_size": best[0],
            "instances_per_s": rate,
            "ours_over_lm_eval": mine["instances_per_s"] / rate if "instances_per_s" in mine else None,
            # Its own matmul work over its time; and the work ours needs over its time, the same unit as ours.
            "mfu": (flops / best[1] / (peak_tflops * 1e12)) if peak_tflops else None,
            "mfu_of_needed_work": (mine["tflop_needed"] * 1e12 / best[1] / (peak_tflops * 1e12))
            if peak_tflops and "tflop_needed" in mine
            else None,
        }
    out["ok"] = same and disagree == 0
    return out


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def attempt(out: dict, key: str, check: Callable[[], dict], save: Callable[[], None]) -> dict:
    """out[key] = check(); an exception fails this check alone ({"ok": False, "error": ...}) and the others
    still run, and what has been measured is written (save) after every check, so that a family cut short
    by an error or by bin/gpu-check's time limit still leaves its figures (a GPU session is rare)."""
    begin = time.perf_counter()
    try:
        out[key] = check()
    except Exception as exc:
        traceback.print_exc()
        out[key] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:2000]}
    try:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()  # raises after a device error that stays; the figures are saved anyway
    finally:
        verdict = "" if "ok" not in out[key] else " ok" if out[key]["ok"] else " FAILED"
        print(f"  [{time.perf_counter() - begin:6.1f} s] {key}{verdict}", flush=True)
        save()
    return out[key]


def run(
    dry: bool,
    device: torch.device,
    peak_tflops: float | None,
    families: list[str],
    dtype: torch.dtype,
    lm_eval_batch_sizes: list = (),
    save: Callable[[dict], None] = lambda results: None,
) -> dict:
    from evaluation.ml.scoring import forget_token_budgets

    results: dict = {
        "device": device_name(device),
        "dry": dry,
    }
    fixed = 16 if dry else 64  # the fixed batch size the earlier figures were taken at
    with tempfile.TemporaryDirectory() as tmp:
        for family in families:
            begin = time.perf_counter()
            forget_token_budgets()
            print(f"{NAMES[family]}: building", flush=True)
            loaded, whole = build(family, dry, device, Path(tmp), dtype)
            params = sum(p.numel() for p in loaded.model.parameters())
            out = results[NAMES[family]] = {
                "parameters": params,
                "dtype": str(loaded.dtype).split(".")[1],
                "attention": loaded.model.config._attn_implementation,
                "weights_gib": params * loaded.model.dtype.itemsize / 2**30,
            }

            def check(key, fn, *args, out=out, begin=begin, **kwargs) -> dict:
                def saved():
                    out["seconds"] = time.perf_counter() - begin
                    save(results)

                return attempt(out, key, lambda: fn(*args, **kwargs), saved)

            letters = items_for(questions(8 if dry else 16, 2), "letters")
            texts = items_for(questions(4 if dry else 8, 3), "texts")
            kept_letters: dict = {}
            kept_texts: dict = {}
            check("fast_vs_naive_letters", check_fast_vs_naive, loaded, letters, kept_letters)
            check("fast_vs_naive_texts", check_fast_vs_naive, loaded, texts, kept_texts)
            if whole is not None:
                with tokenized_by(loaded, whole):
                    for case, items in (("letters", letters), ("texts", texts)):
                        check(f"fast_vs_naive_{case}_metaspace", check_fast_vs_naive, loaded, items)
            # The naive path's own rounding sets the back-off check's tolerance; unknown (None, the scores not
            # compared) where a fast-vs-naive check raised, rather than a guess that would fail it.
            measured = [
                out[f"fast_vs_naive_{c}"].get("max_abs_diff_naive_vs_fp32") for c in ("letters", "texts")
            ]
            tolerance = None if None in measured else 2 * max(measured) + 0.02
            timed = {
                "letters": items_for(questions(8 if dry else 256, 4), "letters"),
                "texts": items_for(questions(4 if dry else 128, 5), "texts"),
            }
            for case, items in timed.items():
                check(f"throughput_{case}", check_throughput, loaded, items, None, peak_tflops)
                check(f"throughput_{case}_batch_{fixed}", check_throughput, loaded, items, fixed, peak_tflops)
            check("transfers", check_transfers, loaded, timed["texts"])
            check("profile", profile_batches, loaded, timed["texts"][: 16 if dry else 128])
            if lm_eval_batch_sizes:
                check(
                    "lm_eval",
                    check_lm_eval,
                    loaded,
                    [(letters, kept_letters), (texts, kept_texts)],
                    timed,
                    {case: out[f"throughput_{case}"] for case in timed},
                    lm_eval_batch_sizes,
                    peak_tflops,
                )
            check(
                "training",
                check_training,
                loaded,
                questions(64, 6),
                steps=2 if dry else 5,
                warmup=1 if dry else 2,
            )
            check(
                "oom_backoff",
                check_backoff,
                loaded,
                items_for(questions(16, 7, words=20 if dry else 300), "texts"),
                fixed,
                tolerance,
            )
            out["seconds"] = time.perf_counter() - begin
            report_family(NAMES[family], out)
            del loaded
            if device.type == "cuda":
                torch.cuda.empty_cache()
    checks = [
        v
        for r in results.values()
        if isinstance(r, dict)
        for v in r.values()
        if isinstance(v, dict) and "ok" in v
    ]
    results["ok"] = all(c["ok"] for c in checks)
    save(results)
    return results


def _percent(share: float | None) -> str:
    return "n/a" if share is None else f"{100 * share:.1f}%"


def report_family(name: str, r: dict) -> None:
    """One model's figures, as they are printed when its checks are done; a check that raised is printed with
    its error, and the rest as usual."""
    print(
        f"\n{name}: {r['parameters'] / 1e9:.2f} B parameters, {r['weights_gib']:.1f} GiB in {r['dtype']}, "
        f"attention {r['attention']}, {r['seconds']:.0f} s"
    )
    failed = {key for key, value in r.items() if isinstance(value, dict) and "error" in value}
    for key in sorted(failed):
        print(f"  {key}: ERROR {r[key]['error']}  FAIL")
    r = {key: value for key, value in r.items() if key not in failed}
    for case in [k.removeprefix("fast_vs_naive_") for k in r if k.startswith("fast_vs_naive_")]:
        c = r[f"fast_vs_naive_{case}"]
        print(
            f"  fast vs naive ({case.replace('_', ', ') + (' tokenizer' if '_' in case else '')}, "
            f"{c['items']} items): fp32 (TF32 off) max |diff| "
            f"{c['fp32_max_abs_diff_fast_vs_naive']:.2e}, items over {c['fp32_tolerance']:g}: "
            f"{c['fp32_items_over_tolerance']}; {r['dtype']} error vs fp32, mean of item max: fast "
            f"{c['mean_error_fast_vs_fp32']:.4f}, naive {c['mean_error_naive_vs_fp32']:.4f} (allowed x"
            f"{c['error_factor_allowed']:g}), max: fast {c['max_abs_diff_fast_vs_fp32']:.4f}, naive "
            f"{c['max_abs_diff_naive_vs_fp32']:.4f}; clear predictions differing "
            f"{c['clear_predictions_disagreeing']}/{c['clear_predictions_compared']}  "
            f"{'ok' if c['ok'] else 'FAIL'}"
        )
    for key in [k for k in r if k.startswith("throughput_")]:
        t = r[key]
        mfu = f"{100 * t['mfu']:.1f}%" if t["mfu"] is not None else "n/a"
        how = (
            f"token budget {t['token_budget']}, largest batch {t['largest_batch']}"
            if t["batching"] == "tokens"
            else f"batch {t['batch_size'] or 16}"
        )
        print(
            f"  scoring ({key.removeprefix('throughput_')}): {t['instances_per_s']:.1f} instances/s "
            f"({t['items']} in {t['seconds']:.2f} s, {how}, padding {100 * t['padding_share']:.0f}%), MFU {mfu}"
        )
    if (t := r.get("transfers")) is not None:
        syncs = t["device_syncs_per_batch"]
        print(
            f"  device-to-host transfers: {t['transfers']} in {t['batches']} batches"
            + (f", device synchronisations per batch {syncs:.1f}" if syncs is not None else "")
            + f"  {'ok' if t['ok'] else 'FAIL'}"
        )
    if (prof := r.get("profile")) is not None:
        busy = f", device busy {prof['device_busy_s']:.3f} s" if prof["device_busy_s"] is not None else ""
        print(f"  profile ({prof['items']} items, {prof['wall_s']:.3f} s wall{busy}):")
        for row in prof["top"]:
            print(f"    {row['s']:8.4f} s  {row['calls']:6d}x  {row['op'][:70]}")
    if "lm_eval" in r:
        lm = r["lm_eval"]
        if "skipped" in lm:
            print(f"  lm_eval: skipped: {lm['skipped']}")
        else:
            print(
                f"  lm_eval HFLM (batch sizes {', '.join(lm['batch_sizes'])}): same ids {lm['same_ids']}, "
                f"clear fp32 predictions differing {lm['clear_predictions_disagreeing']}/"
                f"{lm['clear_predictions_compared']}  {'ok' if lm['ok'] else 'FAIL'}"
            )
            for case in ("letters", "texts"):
                c = lm[case]
                ours = r.get(f"throughput_{case}") or {}  # none where our throughput check raised
                mfus = (
                    f"MFU ours {_percent(ours.get('mfu'))}, lm_eval {_percent(c['mfu'])} of its own work "
                    f"({_percent(c['mfu_of_needed_work'])} of the needed work)"
                    if c["mfu"] is not None
                    else "MFU n/a"
                )
                over = "n/a" if c["ours_over_lm_eval"] is None else f"{c['ours_over_lm_eval']:.2f}"
                print(
                    f"    {case}: lm_eval {c['instances_per_s']:.1f}/s (batch {c['best_batch_size']}), "
                    f"ours/lm_eval {over}; {mfus}"
                )
    if (t := r.get("training")) is not None:
        memory = (
            f"{t['peak_memory_gib']:.1f} GiB peak"
            if t["peak_memory_gib"] is not None
            else "memory n/a on CPU"
        )
        print(
            f"  soft-prompt training (CE+KL+rep, 16 prompts, 20 virtual tokens): {t['seconds_per_step']:.2f} s/step, "
            f"{memory}  {'ok' if t['ok'] else 'FAIL'}"
        )
    if (b := r.get("oom_backoff")) is not None:
        print(
            f"  out-of-memory back-off ({b['how']}): batch {b['start_batch']} -> {b['largest_batch_that_ran']}, "
            f"max |diff| vs uncapped {b['max_abs_diff_vs_uncapped']:.4f}; token budget ({b['tokens_how']}): "
            f"{b['tokens_out_of_memory']} out-of-memory, then {b['tokens_out_of_memory_last_pass']} in the last pass "
            f"(largest batch {b['tokens_largest_batch']}, budget {b['token_budget']} tokens, found "
            f"{b['token_budget_found']}), max |diff| {b['tokens_max_abs_diff_vs_uncapped']:.4f}"
            f"{'' if b['tolerance'] is not None else ' (tolerance unknown: fast vs naive raised)'}  "
            f"{'ok' if b['ok'] else 'FAIL'}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dry", action="store_true", help="CPU, tiny configs of the same architectures.")
    parser.add_argument(
        "--dry-bf16",
        action="store_true",
        help="with --dry, compute in bf16 as on a GPU (slow on CPUs; the dry default is fp32)",
    )
    parser.add_argument("--peak-tflops", type=float, help="the device's dense bf16 peak, for MFU")
    parser.add_argument("--only", choices=["seq2seq", "causal"], help="check one model")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--lm-eval",
        default="64,256,auto",
        help="lm_eval HFLM batch sizes to time, best taken (default 64,256,auto); 'none' skips lm_eval",
    )
    args = parser.parse_args(argv)
    sizes = [] if args.lm_eval == "none" else [b if b == "auto" else int(b) for b in args.lm_eval.split(",")]
    threads = torch.get_num_threads()
    if args.dry:
        device = torch.device("cpu")
        # Tiny matrices gain nothing from threads, and on a shared CPU spinning threads cost many times more.
        torch.set_num_threads(1)
    elif torch.cuda.is_available():
        device = torch.device("cuda")
    else:
        print("No CUDA device: run with --dry for the CPU check with tiny configs.", file=sys.stderr)
        return 2
    peak = args.peak_tflops
    if peak is None and device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        peak = next((v for k, v in PEAK_TFLOPS.items() if k in name), None)
    try:
        # bf16 as on a GPU; the dry run computes in fp32 unless asked, since CPUs run bf16 matmuls slowly.
        dtype = torch.float32 if args.dry and not args.dry_bf16 else torch.bfloat16
        families = [args.only] if args.only else ["seq2seq", "causal"]
        print(
            f"GPU check on {device_name(device)}{' (dry run: tiny configs)' if args.dry else ''}", flush=True
        )

        def save(results: dict) -> None:
            if args.json:  # whole or not at all: a time limit's kill mid-write left half a file
                partial = args.json.with_name(args.json.name + ".partial")
                partial.write_text(json.dumps(results, indent=2), encoding="utf-8")
                os.replace(partial, args.json)

        results = run(args.dry, device, peak, families, dtype, sizes, save)
    finally:
        torch.set_num_threads(threads)  # main() also runs inside the test suite's process
    print(f"\n{'All checks passed.' if results['ok'] else 'Some checks FAILED.'}")
    return 0 if results["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
