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
   forward per option) on the same items, one-token (letter) and multi-token options. bf16 rounds every
   activation to 8 significant bits, so the two paths, which add and multiply in different orders and
   shapes, cannot agree to the 1e-4 the fp32 tests demand. The tolerance is measured, not guessed: the naive
   reference is run again with the model in fp32, and the fast path passes when its distance to the bf16
   reference is at most twice the bf16 reference's own distance to fp32, plus 0.02 (log-likelihood units,
   for items where that distance happens to be tiny). Two bf16 computations each within e of the fp32 value
   are within 2e of each other; a real bug (a shifted position, a wrong mask) moves log-likelihoods by whole
   units. Predictions must agree wherever the reference's top two options are further apart than that.
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
Exit status 0 when every check passes. --json PATH writes the figures.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import tempfile
import time
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
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0}  # dense bf16, no sparsity

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
    tokenizer = train_tokenizer(
        corpus, workdir / family, vocab_size=2000, add_eos=family == "seq2seq", add_bos=family == "causal"
    )
    dims = DRY[family] if dry else (FLAN_T5_XL if family == "seq2seq" else LLAMA_7B)
    if dry:
        dims = dict(dims, vocab_size=len(tokenizer))
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
    return LoadedModel(spec=spec, model=model, tokenizer=tokenizer, device=device, dtype=dtype)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def fast_scores(loaded, items, batch_size: int, sizes: list[int] | None = None):
    from evaluation.ml.config import ScoreConfig
    from evaluation.ml.scoring import score

    out = {}
    for batch in score(loaded, items, ScoreConfig(batch_size=batch_size, device=str(loaded.device))):
        if sizes is not None:
            sizes.append(len(batch))
        out.update(batch)
    return [out[i].logliks for i in range(len(items))]


def check_fast_vs_naive(loaded, items) -> dict:
    from evaluation.ml.reference import score_naive

    fast = fast_scores(loaded, items, batch_size=8)
    naive = [s.logliks for s in score_naive(loaded, items)]
    # The exact-ish values, in fp32. bf16 -> fp32 -> bf16 is lossless, and every tensor goes back to its own
    # dtype (Llama keeps its rotary frequencies in fp32), so the model comes back exactly as it was.
    dtype, model = loaded.dtype, loaded.model

    def tensors():
        return [*model.named_parameters(), *model.named_buffers()]

    original = {name: tensor.dtype for name, tensor in tensors()}
    model.float()
    loaded.dtype = torch.float32
    try:
        exact = [s.logliks for s in score_naive(loaded, items)]
    finally:
        for name, tensor in tensors():
            tensor.data = tensor.data.to(original[name])
        loaded.dtype = dtype
    worst, ref_error, failures, compared, disagree = 0.0, 0.0, 0, 0, 0
    for f, n, e in zip(fast, naive, exact, strict=True):
        own = max(abs(a - b) for a, b in zip(n, e))  # the bf16 reference's own rounding, on this item
        tolerance = 2 * own + 0.02
        diff = max(abs(a - b) for a, b in zip(f, n))
        worst, ref_error = max(worst, diff), max(ref_error, own)
        failures += diff > tolerance
        top = sorted(n, reverse=True)
        if top[0] - top[1] > tolerance:  # a clear winner: the fast path must pick it too
            compared += 1
            disagree += max(range(len(f)), key=f.__getitem__) != max(range(len(n)), key=n.__getitem__)
    return {
        "items": len(items),
        "max_abs_diff_fast_vs_naive": worst,
        "max_abs_diff_naive_vs_fp32": ref_error,
        "items_over_tolerance": failures,
        "clear_predictions_compared": compared,
        "clear_predictions_disagreeing": disagree,
        "ok": failures == 0 and disagree == 0,
    }


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


def check_throughput(loaded, items, batch_size: int, peak_tflops: float | None) -> dict:
    fast_scores(loaded, items[: batch_size * 2], batch_size)  # warm-up: kernels chosen, allocator primed
    sync(loaded.device)
    start = time.perf_counter()
    fast_scores(loaded, items, batch_size)
    sync(loaded.device)
    seconds = time.perf_counter() - start
    flops = needed_flops(loaded, items)
    return {
        "items": len(items),
        "batch_size": batch_size,
        "seconds": seconds,
        "instances_per_s": len(items) / seconds,
        "tflop_needed": flops / 1e12,
        "mfu": (flops / seconds / (peak_tflops * 1e12)) if peak_tflops else None,
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
    """A forward pre-hook on the input embeddings that fails like CUDA does above `limit` rows (--dry)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def __call__(self, module, args):
        if args and args[0].shape[0] > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (injected)")


def check_backoff(loaded, items, start: int, tolerance: float) -> dict:
    want = fast_scores(loaded, items, batch_size=2)
    sizes: list[int] = []
    if loaded.device.type == "cuda":
        torch.cuda.empty_cache()
        total = torch.cuda.get_device_properties(loaded.device).total_memory
        allowed = torch.cuda.memory_allocated() + 2 * 2**30  # the weights plus 2 GiB
        torch.cuda.set_per_process_memory_fraction(allowed / total)
        how = f"memory capped at {allowed / 2**30:.1f} GiB"
        try:
            got = fast_scores(loaded, items, batch_size=start, sizes=sizes)
        finally:
            torch.cuda.set_per_process_memory_fraction(1.0)
            torch.cuda.empty_cache()
    else:
        limit = max(1, start // 4)
        how = f"out-of-memory injected above {limit} rows"
        # Every token-embedding lookup (T5's encoder and decoder each hold one): a forward pass starts there.
        vocab = loaded.model.get_input_embeddings().weight.shape[0]
        hooks = [
            module.register_forward_pre_hook(_InjectOutOfMemory(limit))
            for module in loaded.model.modules()
            if isinstance(module, torch.nn.Embedding) and module.weight.shape[0] == vocab
        ]
        try:
            got = fast_scores(loaded, items, batch_size=start, sizes=sizes)
        finally:
            for hook in hooks:
                hook.remove()
    # The same bf16 computation in other batch shapes: within the rounding measured against fp32 above.
    diff = max(abs(a - b) for g, w in zip(got, want, strict=True) for a, b in zip(g, w))
    backed_off = max(sizes) < start
    return {
        "how": how,
        "start_batch": start,
        "largest_batch_that_ran": max(sizes),
        "max_abs_diff_vs_uncapped": diff,
        "tolerance": tolerance,
        "ok": backed_off and diff <= tolerance,
    }


def run(
    dry: bool, device: torch.device, peak_tflops: float | None, families: list[str], dtype: torch.dtype
) -> dict:
    results: dict = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "dry": dry,
    }
    with tempfile.TemporaryDirectory() as tmp:
        for family in families:
            begin = time.perf_counter()
            loaded = build(family, dry, device, Path(tmp), dtype)
            params = sum(p.numel() for p in loaded.model.parameters())
            letters = items_for(questions(8 if dry else 16, 2), "letters")
            texts = items_for(questions(4 if dry else 8, 3), "texts")
            out = {
                "parameters": params,
                "dtype": str(loaded.dtype).split(".")[1],
                "weights_gib": params * loaded.model.dtype.itemsize / 2**30,
                "fast_vs_naive_letters": check_fast_vs_naive(loaded, letters),
                "fast_vs_naive_texts": check_fast_vs_naive(loaded, texts),
            }
            rounding = max(
                out[f"fast_vs_naive_{c}"]["max_abs_diff_naive_vs_fp32"] for c in ("letters", "texts")
            )
            out |= {
                "throughput_letters": check_throughput(
                    loaded,
                    items_for(questions(8 if dry else 256, 4), "letters"),
                    16 if dry else 64,
                    peak_tflops,
                ),
                "throughput_texts": check_throughput(
                    loaded,
                    items_for(questions(4 if dry else 128, 5), "texts"),
                    16 if dry else 64,
                    peak_tflops,
                ),
                "training": check_training(
                    loaded, questions(64, 6), steps=2 if dry else 5, warmup=1 if dry else 2
                ),
                "oom_backoff": check_backoff(
                    loaded,
                    items_for(questions(4 if dry else 16, 7, words=20 if dry else 300), "texts"),
                    16 if dry else 64,
                    2 * rounding + 0.02,
                ),
            }
            out["seconds"] = time.perf_counter() - begin
            results[NAMES[family]] = out
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
    return results


def report(results: dict) -> None:
    print(f"GPU check on {results['device']}{' (dry run: tiny configs)' if results['dry'] else ''}")
    for name, r in results.items():
        if not isinstance(r, dict):
            continue
        print(
            f"\n{name}: {r['parameters'] / 1e9:.2f} B parameters, {r['weights_gib']:.1f} GiB in {r['dtype']}, {r['seconds']:.0f} s"
        )
        for case in ("letters", "texts"):
            c = r[f"fast_vs_naive_{case}"]
            print(
                f"  fast vs naive ({case}, {c['items']} items): max |diff| {c['max_abs_diff_fast_vs_naive']:.4f}, "
                f"{r['dtype']} reference vs fp32 {c['max_abs_diff_naive_vs_fp32']:.4f}, over tolerance "
                f"{c['items_over_tolerance']}, clear predictions differing {c['clear_predictions_disagreeing']}/"
                f"{c['clear_predictions_compared']}  {'ok' if c['ok'] else 'FAIL'}"
            )
        for case in ("letters", "texts"):
            t = r[f"throughput_{case}"]
            mfu = f"{100 * t['mfu']:.1f}%" if t["mfu"] is not None else "n/a"
            print(
                f"  scoring ({case}): {t['instances_per_s']:.1f} instances/s ({t['items']} in {t['seconds']:.2f} s, "
                f"batch {t['batch_size']}), MFU {mfu}"
            )
        t = r["training"]
        memory = (
            f"{t['peak_memory_gib']:.1f} GiB peak"
            if t["peak_memory_gib"] is not None
            else "memory n/a on CPU"
        )
        print(
            f"  soft-prompt training (CE+KL+rep, 16 prompts, 20 virtual tokens): {t['seconds_per_step']:.2f} s/step, "
            f"{memory}  {'ok' if t['ok'] else 'FAIL'}"
        )
        b = r["oom_backoff"]
        print(
            f"  out-of-memory back-off ({b['how']}): batch {b['start_batch']} -> {b['largest_batch_that_ran']}, "
            f"max |diff| vs uncapped {b['max_abs_diff_vs_uncapped']:.4f}  {'ok' if b['ok'] else 'FAIL'}"
        )
    print(f"\n{'All checks passed.' if results['ok'] else 'Some checks FAILED.'}")


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
    args = parser.parse_args(argv)
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
        results = run(args.dry, device, peak, [args.only] if args.only else ["seq2seq", "causal"], dtype)
    finally:
        torch.set_num_threads(threads)  # main() also runs inside the test suite's process
    report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0 if results["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
