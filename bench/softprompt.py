"""Cost of alignment training against plain prompt tuning with PEFT, on the same model and batch, in one run.

    .venv/bin/python bench/softprompt.py                 # t5-small-sized seq2seq, CPU; --help for options
    .venv/bin/python bench/softprompt.py --arch gpt2     # gpt2-small-sized causal model

Both contenders train the same PEFT prompt-tuning embeddings (k virtual tokens) of the same frozen,
locally built model (random weights, evaluation/ml/build.py) on the same batches: B MMLU test questions
(../shared/data/mmlu/test, a seeded sample; synthetic questions when the data is absent), each under P
phrasings, i.e. B x P prompts per step.
- plain: PEFT's standard prompt tuning step. `PeftModel(input_ids, attention_mask, labels=gold answer)`:
  one forward and backward per prompt on the gold answer's tokens (what `get_peft_model` users run).
- align: evaluation/ml/softprompt.py's step: every option of every prompt is scored (rank classification),
  CE on the gold option + KL(anchor || paraphrase) + (1 - cos) between pooled representations. On causal
  models the context runs once per prompt and every one-token option is read from its last position (only
  longer options continue from its cache), as the scorer's fast path does; goal: <= 1.3x plain's time per
  step and no more memory.
Each contender runs in its own child process (so peak memory is its own): a few warm-up steps, then N timed
steps. Figures: median seconds per optimiser step, and peak memory (max RSS of the child on CPU; peak CUDA
memory allocated on GPU). The ratio align / plain is printed for both.
--smoke: tiny models, batch 2, 4 virtual tokens, one warm-up and one timed step (tests/test_benches.py runs it).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchdb import SMOKE_HELP

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared" / "data" / "mmlu" / "test"

PHRASINGS = [
    ("The following is a multiple choice question.", "\n\n{question}\n{options}\nAnswer:"),
    (
        "Answer the question with the letter of the correct option.",
        "\nQuestion: {question}\n{options}\nAnswer:",
    ),
    ("Question:", " {question}\nChoices:\n{options}\nThe answer is"),
    ("Pick the right option.", " {question}\n{options}\nLetter:"),
]
LETTERS = "ABCD"


def questions(count: int, seed: int) -> list[tuple[str, list[str], int]]:
    rows = []
    if SHARED.is_dir():
        for path in sorted(SHARED.glob("*.csv")):
            with path.open(newline="", encoding="utf-8") as handle:
                for row in csv.reader(handle):
                    if len(row) == 6 and row[5] in LETTERS:
                        rows.append((row[0], row[1:5], LETTERS.index(row[5])))
    if not rows:
        rng = random.Random(seed)
        rows = [
            (f"What is {a} + {b}?", [str(a + b + d) for d in (0, 1, 2, 3)], 0)
            for a, b in ((rng.randrange(100), rng.randrange(100)) for _ in range(500))
        ]
    return random.Random(seed).sample(rows, min(count, len(rows)))


def build(args) -> None:
    from evaluation.ml.build import build_model, train_tokenizer

    data = questions(args.questions, args.seed)
    corpus = [q + " " + " ".join(o) for q, o, _ in data] + [s + r for s, r in PHRASINGS]
    tokenizer = train_tokenizer(corpus * 3, args.model_dir, vocab_size=4000, add_eos=args.arch == "t5")
    size = "tiny" if args.smoke else {"t5": "t5-small", "gpt2": "gpt2-small"}[args.arch]
    build_model(args.arch, tokenizer, args.model_dir, size=size, seed=1)


def child(args) -> dict:
    import torch

    from evaluation.ml import softprompt
    from evaluation.ml.config import ModelSpec
    from evaluation.ml.loading import load
    from evaluation.ml.scoring import ScoringItem

    torch.set_num_threads(args.threads)
    data = questions(args.questions, args.seed)
    model_dir = Path(args.model_dir)
    family = "seq2seq" if args.arch == "t5" else "causal"
    loaded = load(ModelSpec(source=str(model_dir), family=family, dtype="float32"), device=args.device)

    def item(phrasing: int, index: int) -> ScoringItem:
        question, options, _ = data[index]
        shared, rest = PHRASINGS[phrasing]
        listing = "\n".join(f"{LETTERS[i]}. {text}" for i, text in enumerate(options))
        return ScoringItem(shared, rest.format(question=question, options=listing), tuple(LETTERS))

    task = softprompt.TrainingTask(
        name="mmlu",
        phrasings=tuple(range(len(PHRASINGS))),
        anchors=(0,),
        instance_count=len(data),
        item=item,
        gold=lambda index: data[index][2],
    )
    steps = args.warmup + args.steps
    config = softprompt.AlignConfig(
        num_virtual_tokens=args.tokens,
        steps=steps,
        instances_per_batch=args.batch,
        paraphrases=len(PHRASINGS) - 1,
        seed=args.seed,
    )
    cuda = loaded.device.type == "cuda"
    times: list[float] = []
    if args.mode == "align":
        mark = [time.perf_counter()]

        def on_step(step: int, record: dict) -> None:
            now = time.perf_counter()
            if step == args.warmup and cuda:
                torch.cuda.reset_peak_memory_stats()
            if step > args.warmup:
                times.append(now - mark[0])
            mark[0] = now

        if cuda:
            torch.cuda.synchronize()
        softprompt.train(loaded, [task], config, on_step=on_step)
    else:
        times = plain_prompt_tuning(loaded, task, config, args, cuda)
    peak = (
        torch.cuda.max_memory_allocated() / 2**20
        if cuda
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
    return {
        "median_s": statistics.median(times),
        "steps": len(times),
        "peak_mib": peak,
        "memory": "CUDA peak allocated" if cuda else "max RSS",
    }


def plain_prompt_tuning(loaded, task, config, args, cuda: bool) -> list[float]:
    """PEFT's own prompt tuning: LM loss on the gold answer, one row per (instance, phrasing)."""
    import torch
    from peft import PromptTuningConfig, TaskType, get_peft_model

    from evaluation.ml.encoding import Encoder

    model = loaded.model
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    peft_model = get_peft_model(
        model,
        PromptTuningConfig(
            task_type=TaskType[loaded.family.peft_task_type],
            num_virtual_tokens=config.num_virtual_tokens,
            num_transformer_submodules=1,
        ),
    )
    peft_model.eval()
    weight = peft_model.prompt_encoder["default"].embedding.weight
    optimiser = torch.optim.Adam([weight], lr=config.learning_rate)
    encoder = Encoder(loaded.tokenizer, family=loaded.family)
    rng = random.Random(config.seed)
    pad = loaded.tokenizer.pad_token_id
    times = []
    for step in range(1, config.steps + 1):
        if step == args.warmup + 1 and cuda:
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        rows = []
        for _ in range(config.instances_per_batch):
            index = rng.randrange(task.instance_count)
            for phrasing in task.phrasings[: config.paraphrases + 1]:
                item = task.item(phrasing, index)
                encoded = encoder.encode(item.shared, item.rest, list(item.options))
                prompt = [*encoded.shared_ids, *encoded.rest_ids]
                rows.append((prompt, encoded.option_ids[task.gold(index)]))
        width = max(len(p) + (0 if loaded.spec.family == "seq2seq" else len(a)) for p, a in rows)
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        if loaded.spec.family == "seq2seq":
            labels = torch.full((len(rows), max(len(a) for _, a in rows)), -100, dtype=torch.long)
            for r, (prompt, answer) in enumerate(rows):
                ids[r, : len(prompt)] = torch.tensor(prompt)
                mask[r, : len(prompt)] = 1
                labels[r, : len(answer)] = torch.tensor(answer)
        else:
            labels = torch.full_like(ids, -100)
            for r, (prompt, answer) in enumerate(rows):
                sequence = prompt + answer
                ids[r, : len(sequence)] = torch.tensor(sequence)
                mask[r, : len(sequence)] = 1
                labels[r, len(prompt) : len(sequence)] = torch.tensor(answer)
        device = loaded.device
        autocast = (
            torch.autocast("cuda", dtype=torch.bfloat16) if cuda else torch.autocast("cpu", enabled=False)
        )
        with autocast:
            loss = peft_model(
                input_ids=ids.to(device), attention_mask=mask.to(device), labels=labels.to(device)
            ).loss
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        if cuda:
            torch.cuda.synchronize()
        if step > args.warmup:
            times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--arch", choices=["t5", "gpt2"], default="t5")
    parser.add_argument(
        "--batch", type=int, default=4, help="Instances per step (each under every phrasing)."
    )
    parser.add_argument("--tokens", type=int, default=20, help="Virtual tokens.")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    parser.add_argument("--mode", choices=["build", "plain", "align"], help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.smoke:
        args.batch, args.tokens, args.steps, args.warmup, args.questions = 2, 4, 1, 1, 8
    if args.mode == "build":
        build(args)
        print("{}")
        return
    if args.mode:
        print(json.dumps(child(args)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / args.arch
        results = {}
        for mode in ("build", "plain", "align"):  # the model is built in a child of its own, off both peaks
            command = [sys.executable, __file__, *sys.argv[1:], "--mode", mode, "--model-dir", str(model_dir)]
            out = subprocess.run(
                command,
                capture_output=True,
                text=True,
                encoding="utf-8",
                env={**os.environ, "HF_HUB_OFFLINE": "1"},
            )
            if out.returncode != 0:
                sys.exit(f"{mode} failed:\n{out.stderr[-3000:]}")
            results[mode] = json.loads(out.stdout.strip().splitlines()[-1])
        del results["build"]
    plain, align = results["plain"], results["align"]
    rows = len(PHRASINGS) * args.batch
    print(
        f"{args.arch} ({'tiny' if args.smoke else 't5-small' if args.arch == 't5' else 'gpt2-small'}-sized), device {args.device}, "
        f"{args.threads} threads, batch {args.batch} instances x {len(PHRASINGS)} phrasings = {rows} prompts, "
        f"{args.tokens} virtual tokens, {args.steps} timed steps after {args.warmup} warm-up; load {os.getloadavg()[0]:.2f}"
    )
    print(f"{'':<28} {'s/step (median)':>16} {'peak MiB':>10}")
    print(f"{'plain prompt tuning (PEFT)':<28} {plain['median_s']:>16.3f} {plain['peak_mib']:>10.0f}")
    print(f"{'alignment (CE+KL+rep)':<28} {align['median_s']:>16.3f} {align['peak_mib']:>10.0f}")
    print(
        f"{'ratio align / plain':<28} {align['median_s'] / plain['median_s']:>15.2f}x "
        f"{align['peak_mib'] / plain['peak_mib']:>9.2f}x   ({plain['memory']})"
    )


if __name__ == "__main__":
    main()
