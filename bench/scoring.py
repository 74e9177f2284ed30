"""Rank-classification throughput: the project's scorer (evaluation/ml/scoring.py) against its naive reference
(evaluation/ml/reference.py) and against EleutherAI lm-evaluation-harness (`lm_eval`, model type `hf`), in one
run, on the same models, instances, phrasings and prompts.

    python3.11 -m venv /tmp/benchvenv
    /tmp/benchvenv/bin/pip install torch==2.13.0          # first: the CPU build, so nothing pulls CUDA
    /tmp/benchvenv/bin/pip install -e ".[bench]"          # the project plus lm_eval[hf]==0.4.13
    /tmp/benchvenv/bin/python bench/scoring.py            # from the repo root; --help for smaller runs

Workload. Two locally built models with random weights and a byte-level BPE tokenizer trained on the MMLU
text (evaluation/ml/build.py): a t5-small-sized seq2seq model and a gpt2-small-sized causal one. A fixed,
seeded sample of MMLU test questions across all subjects (../shared/data/mmlu/test) is rendered with the
study's MMLU phrasings (MMLU/Unobserved/1.. in ../shared/data/paper_instructions, in the study's order),
each (phrasing, question) pair being one instance; "instances/s" counts those. Two option kinds: letters
(options "A".."D", the phrasing lists the option texts) and option text (the four option texts).
--smoke: tiny models (evaluation/ml/build.py's "tiny" size), 4 questions, 2 naive items, one round: checks
that the script runs end to end (tests/test_benches.py runs it, lm_eval included: the test extra installs it);
its speeds mean nothing. The run exits with status 1 when ours and the naive reference, or ours and lm_eval,
disagree beyond TOLERANCE or on a prediction, or when lm_eval was given other token ids.
Defaults: 200 questions x 1 phrasing (the issue's lm_eval figures are for 200 questions), naive reference on
16 instances; that takes about 10-15 minutes on 2 quiet cores, and each further phrasing (--phrasings)
adds about as much again. Figures are wall-clock. Other jobs on the machine slow every contender, and
not always equally, so ours and lm_eval alternate in rounds (--rounds, cut from the order ours batches in,
so its batches are those of a single call), the load average is printed, and the ratio of CPU seconds is
printed beside the wall-clock one as a cross-check.

What lm_eval is given, and why it computes exactly our quantity. Each instance becomes one document of a
local YAML task (`dataset_path: json`, data from a temp file; `output_type: multiple_choice`), run through
`lm_eval.simple_evaluate` with `HFLM(pretrained=<local dir>)`, `log_samples=True`; its per-option
log-likelihoods are read back from the sample records (`resps`). The conventions were checked against the
installed source (lm_eval 0.4.13, lm_eval/api/model.py `TemplateLM._encode_pair`, lm_eval/models/huggingface.py
`HFLM.tok_encode`, `_loglikelihood_tokens`):
- `_encode_pair` moves the context's trailing whitespace into the continuation and then prepends
  `target_delimiter` too (so "is " + " A" scores "  A"), whereas encoding.py lets trailing whitespace replace
  the default " ". So the document's text is the rstripped prompt, the choices carry our delimiter already,
  and `target_delimiter: ""`. For the default phrasings (none ends in whitespace) this is the same as plain
  `doc_to_text = shared + rest` with lm_eval's default target_delimiter " ".
- seq2seq: in 0.4.13 the context goes through `tok_encode(context)` (the tokenizer's special tokens, so T5's
  </s> is appended, as in encoding.py) and the continuation through `tok_encode(continuation,
  add_special_tokens=False)`: no EOS is appended to the scored option. (lm_eval 0.4.2 still encoded the
  continuation with special tokens, so a T5-style tokenizer had it score "A </s>" instead of "A"; 0.4.9
  already did not. So with 0.4.13 the bench keeps the realistic T5 tokenizer, add_eos=True, as the tests
  do, and the "same ids" check below confirms no EOS reaches the scored option.) The decoder
  scores the option with no delimiter, hence choices without one. lm_eval runs one encoder+decoder pass per
  (context, option) pair, with `labels=` so that the decoder input is [start] + option[:-1], as ours.
- causal: lm_eval tokenizes context + continuation together and splits at len(tokens(context)); encoding.py
  tokenizes shared, rest and option apart for a GPT-2-style byte-level tokenizer like this bench's (where
  that gives the whole text's ids; other tokenizers it tokenizes whole). The ids agree; the bench checks this for every pair (the "same ids" line) before timing, so any difference in
  log-likelihood is arithmetic, not tokenization. lm_eval's one-token-continuation cache (`logits_cache`,
  default on) runs one forward per context for single-token options, so with letters it already shares the
  pass across options; what ours adds there is the phrasing's shared prefix, computed once.
- Both run fp32 on CPU with the same torch thread count (--threads, default 2), batch size 16 in each one's
  unit (ours: instances, all options; lm_eval: (context, option) requests, one per context group for
  single-token causal options). lm_eval's time is its `loglikelihood` call (tokenizing + scoring, like ours
  `score()`); its total `simple_evaluate` wall time is printed too. HF_HUB_OFFLINE / HF_DATASETS_OFFLINE are
  set: nothing touches the network.

The naive reference (one forward per (prompt, option)) is timed on an evenly spread subset (--naive-items).
Where ours and lm_eval differ most, both are compared with the same computation in float64 (a note line),
to show whether a difference is either side's fp32 rounding or an error.

FLOP floor: 2 x (matmul parameters) x (tokens that must be processed once shared work is shared); embedding
lookups and attention-score products are left out, so it is a lower bound.
- seq2seq: encoder params x encoder tokens per instance (+ the decoder's cross-attention K/V projections,
  which read the encoder tokens); the rest of the decoder and the LM head x decoder positions needed: one
  start position per instance (it serves every option) plus the option tokens beyond the first.
- causal: body params x (each distinct shared prefix once + each instance's rest + each option's tokens
  beyond the first); LM head x (one position per instance + each option's tokens beyond the first).
"floor fraction" = (floor FLOPs / peak FLOP/s) / measured seconds, where peak is this machine's fp32 matmul
throughput measured in the same run with a large torch.matmul: 1.0 would mean doing only the necessary work,
at peak speed. "lm_eval FLOPs/floor" is lm_eval's own matmul work (same counting, padding aside) over the
floor: the most ours/lm_eval can reach while both run at the same FLOP/s.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from benchdb import SMOKE_HELP

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
MMLU_DIR = SHARED / "mmlu" / "test"
PHRASINGS_FILE = SHARED / "paper_instructions" / "InstructionEval_unobserved_instructions.extracted.json"
sys.path.insert(0, str(REPO))

# Before anything imports huggingface_hub / datasets / tqdm: never reach the network, keep lm_eval's
# progress bars out of the printed figures.
os.environ.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TQDM_DISABLE="1")

LETTERS = ("A", "B", "C", "D")
MODELS = {"seq2seq": ("t5", "t5-small", 32000), "causal": ("gpt2", "gpt2-small", 50257)}  # arch, size, vocab
SMOKE_MODELS = {"seq2seq": ("t5", "tiny", 1000), "causal": ("gpt2", "tiny", 1000)}
TOLERANCE = 1e-4


@dataclass
class Question:
    subject: str
    text: str
    options: tuple[str, str, str, str]
    answer: int


@dataclass
class Stopwatch:
    """Wall-clock seconds (what instances/s uses) and this process's CPU seconds: on a machine shared with
    other jobs the CPU seconds move less with their load, so the CPU-time ratio is printed as a cross-check."""

    wall: float = math.nan
    cpu: float = math.nan

    @contextmanager
    def running(self) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.wall = (0.0 if math.isnan(self.wall) else self.wall) + time.perf_counter() - wall
            self.cpu = (0.0 if math.isnan(self.cpu) else self.cpu) + time.process_time() - cpu


@dataclass
class Result:
    family: str
    kind: str
    items: int
    ours: Stopwatch = field(default_factory=Stopwatch)
    naive_items: int = 0
    naive: Stopwatch = field(default_factory=Stopwatch)
    naive_diff: float = math.nan
    naive_same: bool | None = None
    lm: Stopwatch = field(default_factory=Stopwatch)  # lm_eval's loglikelihood calls
    lm_total: Stopwatch = field(default_factory=Stopwatch)  # the whole simple_evaluate calls
    lm_diff: float = math.nan
    lm_same: bool | None = None
    same_ids: bool | None = None
    floor_flops: float = 0.0
    lm_eval_flops: float = math.nan
    goal: float = 3.0  # the ours/lm_eval ratio the issue asks for
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------- data


def read_questions(count: int, seed: int) -> tuple[list[Question], list[str]]:
    """A fixed seeded sample across all subjects, and every row's text (the tokenizer's training corpus)."""
    rows: list[Question] = []
    for path in sorted(MMLU_DIR.glob("*.csv")):
        with path.open(newline="", encoding="utf-8") as handle:
            for record in csv.reader(handle):
                if len(record) != 6:
                    continue
                question, *options, answer = record
                rows.append(
                    Question(path.stem.removesuffix("_test"), question, tuple(options), "ABCD".index(answer))
                )
    if count > len(rows):
        sys.exit(f"--questions {count}: MMLU has only {len(rows)} test questions")
    corpus = [" ".join((q.text, *q.options)) for q in rows]
    return random.Random(seed).sample(rows, count), corpus


def read_phrasings(count: int) -> list[tuple[str, str]]:
    """The study's MMLU templates in its order: (id, template). Mirrors the template rule of
    collection/importers/instructions.py (which needs Django, so it is not imported)."""
    data = json.loads(PHRASINGS_FILE.read_text(encoding="utf-8"))
    templates = []
    for entry in data["MMLU_General"]["instructions"]:
        strings = entry.get("strings") or {}
        text = strings.get("input_template") or strings.get("input_text(formatted)")
        if str(entry.get("id", "")).startswith("MMLU/") and isinstance(text, str):
            templates.append((entry["id"], text))
    if count > len(templates):
        sys.exit(f"--phrasings {count}: the study has only {len(templates)} MMLU templates")
    return templates[:count]


def make_items(phrasings, questions, kind: str):
    """One ScoringItem per (phrasing, question), phrasing-major; and the gold labels."""
    from collection.templating import render_parts
    from evaluation.ml.scoring import ScoringItem

    items, labels = [], []
    for _, template in phrasings:
        for q in questions:
            shared, rest = render_parts(template, {"question": q.text}, list(q.options))
            items.append(ScoringItem(shared, rest, LETTERS if kind == "letters" else tuple(q.options)))
            labels.append(q.answer)
    return items, labels


def lm_eval_docs(items, labels, seq2seq: bool) -> list[dict]:
    """The same prompts as encoding.py: text rstripped, the delimiter (trailing whitespace, else " ") carried
    by each choice for causal models, none for seq2seq (see the module docstring)."""
    docs = []
    for index, (item, label) in enumerate(zip(items, labels)):
        prompt = item.shared + item.rest
        context = prompt.rstrip()
        delimiter = "" if seq2seq else (prompt[len(context) :] or " ")
        docs.append(
            {
                "id": index,
                "context": context,
                "choices": [delimiter + o for o in item.options],
                "label": label,
            }
        )
    return docs


# ---------------------------------------------------------------------------------------------- models


def build_models(root: Path, corpus: list[str], phrasings, models: dict) -> dict[str, Path]:
    from evaluation.ml.build import build_model, train_tokenizer

    texts = corpus + [template for _, template in phrasings]
    paths = {}
    for family, (arch, size, vocab) in models.items():
        out = root / arch
        # T5's tokenizer appends </s> (add_eos), GPT-2's adds nothing: the real models' conventions.
        tokenizer = train_tokenizer(texts, out, vocab_size=vocab, add_eos=arch == "t5")
        build_model(arch, tokenizer, out, size=size, seed=0)
        paths[family] = out
    return paths


def matmul_params(module) -> int:
    import torch
    from transformers.pytorch_utils import Conv1D

    return sum(m.weight.numel() for m in module.modules() if isinstance(m, (torch.nn.Linear, Conv1D)))


def param_groups(loaded) -> dict[str, int]:
    """Matmul parameters by where they act: per encoder token, per decoder token, per scored position."""
    model = loaded.model
    groups = {"head": model.lm_head.weight.numel()}
    if loaded.spec.family == "seq2seq":
        cross_kv = sum(
            m.weight.numel()
            for name, m in model.decoder.named_modules()
            if name.endswith(("EncDecAttention.k", "EncDecAttention.v"))
        )
        # The cross-attention K/V projections read the encoder's tokens, not the decoder's.
        groups["encoder"] = matmul_params(model.encoder) + cross_kv
        groups["decoder"] = matmul_params(model.decoder) - cross_kv
    else:
        groups["body"] = matmul_params(model.transformer)
    return groups


def floor_flops(loaded, encoded) -> float:
    """See the module docstring: the work that cannot be avoided once shared work is shared."""
    p = param_groups(loaded)
    beyond_first = [sum(len(o) - 1 for o in e.option_ids) for e in encoded]
    if loaded.spec.family == "seq2seq":
        enc_tokens = sum(len(e.rest_ids) for e in encoded)
        dec_tokens = sum(1 + extra for extra in beyond_first)
        return 2.0 * (p["encoder"] * enc_tokens + (p["decoder"] + p["head"]) * dec_tokens)
    prefixes = sum(len(prefix) for prefix in {e.shared_ids for e in encoded})
    tokens = prefixes + sum(len(e.rest_ids) for e in encoded) + sum(beyond_first)
    return 2.0 * (p["body"] * tokens + p["head"] * (len(encoded) + sum(beyond_first)))


def lm_eval_flops(loaded, encoded) -> float:
    """The matmul work lm_eval 0.4.13 does, padding aside: seq2seq, a full encoder + decoder pass per
    (instance, option); causal, a pass over context + option[:-1] with logits at every position, one per
    distinct context + option[:-1] (its one-token-continuation cache). Over floor_flops, it is the most
    ours/lm_eval can reach at equal FLOP/s."""
    p = param_groups(loaded)
    total = 0.0
    for e in encoded:
        if loaded.spec.family == "seq2seq":
            total += sum(
                p["encoder"] * len(e.rest_ids) + (p["decoder"] + p["head"]) * len(o) for o in e.option_ids
            )
        else:
            context = len(e.shared_ids) + len(e.rest_ids)
            total += sum(
                (p["body"] + p["head"]) * (context + len(o)) for o in {tuple(o[:-1]) for o in e.option_ids}
            )
    return 2.0 * total


def sharing_gain(encoded) -> float:
    """Tokens a full-context forward per instance reads over tokens read with the shared prefix run once:
    the speed-up over lm_eval that prefix sharing alone should give on causal letters."""
    full = sum(len(e.shared_ids) + len(e.rest_ids) for e in encoded)
    shared = sum(len(p) for p in {e.shared_ids for e in encoded}) + sum(len(e.rest_ids) for e in encoded)
    return full / shared


def peak_matmul_flops(n: int = 2048, reps: int = 4, trials: int = 3) -> float:
    """Best of a few timings of an n x n fp32 matmul: the machine's peak, as a busy machine lets us see it."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up: thread pool and kernels
    best = math.inf
    for _ in range(trials):
        t0 = time.perf_counter()
        for _ in range(reps):
            a @ b
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 * reps / best


# ---------------------------------------------------------------------------------------------- runners


def warm_up(model, seq2seq: bool) -> None:
    """One small untimed forward, so first-call costs (allocator, kernel set-up) hit no contender's timing."""
    import torch

    ids = torch.ones((4, 64), dtype=torch.long)
    with torch.inference_mode():
        model(input_ids=ids, decoder_input_ids=ids[:, :4]) if seq2seq else model(input_ids=ids)


def scorer_order(encoded, seq2seq: bool) -> list[int]:
    """Instances in the order score() batches them: by shared prefix (causal), longest first (a stable
    sort, as score() does)."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for index, item in enumerate(encoded):
        groups.setdefault(() if seq2seq else item.shared_ids, []).append(index)
    return [
        i for members in groups.values() for i in sorted(members, key=lambda i: -len(encoded[i].rest_ids))
    ]


def padding_shares(encoded, order: list[int], batch_size: int, seq2seq: bool) -> tuple[float, float]:
    """The share of padding in ours' batches, as score() builds them (batches cut per shared prefix): in the
    per-instance prompt part (encoder input, or causal rest), and in the option rows that continue options
    longer than one token (option[:-1], in length-sorted groups)."""
    prompt, options = [0, 0], [0, 0]  # real, padded

    def add(tally: list[int], lengths: list[int]) -> None:
        if lengths:
            tally[0], tally[1] = tally[0] + sum(lengths), tally[1] + max(lengths) * len(lengths)

    start = 0
    while start < len(order):
        batch = order[start : start + batch_size]
        batch = [i for i in batch if encoded[i].shared_ids == encoded[batch[0]].shared_ids]
        add(prompt, [len(encoded[i].rest_ids) for i in batch])
        # Both families continue options longer than one token as rows of option[:-1], sorted by length
        # and cut into groups of at most one batch's size (forward.length_groups).
        rows = sorted((len(o) - 1 for i in batch for o in encoded[i].option_ids if len(o) > 1), reverse=True)
        for group_start in range(0, len(rows), len(batch)):
            add(options, rows[group_start : group_start + len(batch)])
        start += len(batch)
    return tuple(1 - real / padded if padded else 0.0 for real, padded in (prompt, options))


def run_ours(loaded, items, batch_size: int, clock: Stopwatch):
    from evaluation.ml.config import ScoreConfig
    from evaluation.ml.encoding import forget_encoders
    from evaluation.ml.scoring import score

    scores = [None] * len(items)
    # The scorer remembers what it tokenized (encoding.shared_encoder); the bench encoded these items before
    # (floor_flops, the same-ids check), so forget it: ours' time includes tokenizing, as lm_eval's does.
    forget_encoders()
    with clock.running():
        for batch in score(loaded, items, ScoreConfig(batch_size=batch_size, device="cpu")):
            for index, result in batch:
                scores[index] = result
    return scores


def run_naive(loaded, items, clock: Stopwatch):
    from evaluation.ml.reference import score_naive

    with clock.running():
        return score_naive(loaded, items)


def write_task(root: Path, name: str, docs: list[dict]) -> None:
    """A local lm_eval task: YAML in the include path, data in a JSON-lines file next to it."""
    data = root / f"{name}.jsonl"
    data.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    # JSON is valid YAML, so json.dumps quotes the path safely.
    (root / f"{name}.yaml").write_text(
        f"task: {name}\n"
        "dataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {json.dumps(str(data))}\n"
        "test_split: test\n"
        "output_type: multiple_choice\n"
        "doc_to_text: context\n"  # field names: lm_eval returns doc[field] as is
        "doc_to_choice: choices\n"
        "doc_to_target: label\n"
        'target_delimiter: ""\n'
        "num_fewshot: 0\n"
        "metric_list:\n  - metric: acc\n",
        encoding="utf-8",
    )


def same_ids(lm, encoded, docs) -> bool:
    """Whether lm_eval's own _encode_pair gives the ids ours scores, for every (instance, option)."""
    for item, doc in zip(encoded, docs):
        for option_ids, choice in zip(item.option_ids, doc["choices"]):
            context_ids, continuation_ids = lm._encode_pair(doc["context"], choice)
            if context_ids != list(item.shared_ids) + item.rest_ids or continuation_ids != option_ids:
                return False
    return True


def run_lm_eval(lm, task_root: Path, name: str, n_docs: int, clock: Stopwatch, total: Stopwatch):
    """Option log-likelihoods per document id, from lm_eval's sample records. `clock` times lm_eval's
    loglikelihood calls, `total` the whole simple_evaluate call."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    original = type(lm).loglikelihood.__get__(lm)

    def loglikelihood(requests, disable_tqdm: bool = False):
        with clock.running():
            return original(requests, disable_tqdm=True)

    lm.loglikelihood = loglikelihood  # the evaluator calls getattr(lm, "loglikelihood")
    try:
        with total.running():
            results = lm_eval.simple_evaluate(
                model=lm,
                tasks=[name],
                task_manager=TaskManager(include_path=str(task_root), include_defaults=False),
                num_fewshot=0,
                log_samples=True,
                bootstrap_iters=0,
            )
    finally:
        del lm.loglikelihood
    # resps: one entry per option, each [(loglik, is_greedy)].
    logliks = {s["doc"]["id"]: [float(resp[0][0]) for resp in s["resps"]] for s in results["samples"][name]}
    if len(logliks) != n_docs:
        raise RuntimeError(f"lm_eval returned {len(logliks)} of {n_docs} documents")
    return logliks


def compare(ours, theirs) -> tuple[float, bool, int]:
    """Max |log-likelihood difference|, whether every argmax agrees (first maximum wins, as both do), and
    the position of the largest difference."""
    diff, same, worst = 0.0, True, 0
    for position, (mine, other) in enumerate(zip(ours, theirs)):
        gap = max(abs(a - b) for a, b in zip(mine.logliks, other))
        diff, worst = (gap, position) if gap > diff else (diff, worst)
        same &= mine.predicted == max(range(len(other)), key=other.__getitem__)
    return diff, same, worst


def fp64_logliks(loaded, item) -> list[float]:
    """The naive reference's computation for one encoded item, in float64 throughout (weights, activations,
    log-softmax): the arbiter when two fp32 results disagree."""
    import copy

    import torch

    model = copy.deepcopy(loaded.model).double()
    logliks = []
    with torch.inference_mode():
        for option in item.option_ids:
            if loaded.spec.family == "seq2seq":
                decoder = [model.config.decoder_start_token_id] + option[:-1]
                logits = model(
                    input_ids=torch.tensor([item.rest_ids]), decoder_input_ids=torch.tensor([decoder])
                )
                rows = logits.logits[0]
            else:
                prompt = list(item.shared_ids) + item.rest_ids
                rows = model(input_ids=torch.tensor([prompt + option])).logits[0, len(prompt) - 1 : -1]
            logprobs = torch.log_softmax(rows, dim=-1)
            logliks.append(float(sum(logprobs[t, token] for t, token in enumerate(option))))
    return logliks


# ---------------------------------------------------------------------------------------------- output


def rate(n: int, seconds: float) -> float:
    return n / seconds if n and seconds and not math.isnan(seconds) else math.nan


def fmt(value: float, spec: str, suffix: str = "") -> str:
    missing = value is None or (isinstance(value, float) and math.isnan(value))
    return "-" if missing else format(value, spec) + suffix


def yes_no(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "NO")


def print_tables(results: list[Result], peak: float) -> None:
    head = (
        f"{'case':<20}{'items':>6}{'ours it/s':>11}{'naive it/s':>12}{'lm_eval it/s':>14}{'ours/naive':>12}"
        f"{'ours/lm_eval':>14}{'goal':>7}{'met':>5}{'max|d| naive':>14}{'max|d| lm_eval':>16}{'same preds':>12}"
        f"{'floor frac':>12}"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        ours = rate(r.items, r.ours.wall)
        naive = rate(r.naive_items, r.naive.wall)
        lm = rate(r.items, r.lm.wall)
        vs_lm = ours / lm
        exact = (r.lm_diff <= TOLERANCE and r.lm_same) if r.lm_same is not None else None
        met = None if math.isnan(vs_lm) else (vs_lm >= r.goal and bool(exact))
        same = [s for s in (r.naive_same, r.lm_same) if s is not None]
        print(
            f"{r.family + ' ' + r.kind:<20}{r.items:>6}{fmt(ours, '.2f'):>11}{fmt(naive, '.2f'):>12}"
            f"{fmt(lm, '.2f'):>14}{fmt(ours / naive, '.1f', 'x'):>12}{fmt(vs_lm, '.2f', 'x'):>14}"
            f"{fmt(r.goal, '.2f', 'x'):>7}{yes_no(met):>5}{fmt(r.naive_diff, '.1e'):>14}{fmt(r.lm_diff, '.1e'):>16}"
            f"{yes_no(all(same) if same else None):>12}{fmt(r.floor_flops / peak / r.ours.wall, '.3f'):>12}"
        )
    print()
    print(f"FLOP floor (peak fp32 matmul measured in this run: {peak / 1e9:.1f} GFLOP/s)")
    head = (
        f"{'case':<20}{'floor GFLOP':>13}{'floor s @peak':>15}{'ours s':>9}{'ours GFLOP/s':>14}{'lm_eval s':>11}"
        f"{'lm_eval total s':>17}{'ours/lm_eval by CPU s':>23}{'lm_eval FLOPs/floor':>21}{'same ids':>10}"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        print(
            f"{r.family + ' ' + r.kind:<20}{r.floor_flops / 1e9:>13.1f}{r.floor_flops / peak:>15.2f}"
            f"{r.ours.wall:>9.2f}{r.floor_flops / r.ours.wall / 1e9:>14.1f}{fmt(r.lm.wall, '.2f'):>11}"
            f"{fmt(r.lm_total.wall, '.2f'):>17}{fmt(r.lm.cpu / r.ours.cpu, '.2f', 'x'):>23}"
            f"{fmt(r.lm_eval_flops / r.floor_flops, '.2f', 'x'):>21}{yes_no(r.same_ids):>10}"
        )
    notes = [f"  {r.family} {r.kind}: {note}" for r in results for note in r.notes]
    if notes:
        print("\n".join(["", "notes:", *notes]))


# ---------------------------------------------------------------------------------------------- main


def bench_case(family, kind, loaded, lm, phrasings, questions, args, task_root: Path) -> Result:
    """One (family, option kind): ours and lm_eval interleaved in rounds, then the naive reference."""
    from evaluation.ml.scoring import encode_items

    items, labels = make_items(phrasings, questions, kind)
    encoded = encode_items(loaded, items)
    result = Result(
        family,
        kind,
        len(items),
        floor_flops=floor_flops(loaded, encoded),
        lm_eval_flops=lm_eval_flops(loaded, encoded),
    )
    if family == "causal" and kind == "letters":
        # lm_eval already shares the forward pass across single-token options; the goal is its speed times
        # what computing the phrasing's shared prefix once saves.
        result.goal = sharing_gain(encoded)
    prompt = sum(len(e.shared_ids) + len(e.rest_ids) for e in encoded) / len(encoded)
    longest = max(len(e.shared_ids) + len(e.rest_ids) + max(map(len, e.option_ids)) for e in encoded)
    per_option = sum(len(o) for e in encoded for o in e.option_ids) / sum(len(e.option_ids) for e in encoded)
    result.notes.append(
        f"{prompt:.0f} prompt tokens per instance on average, longest sequence {longest}; "
        f"{per_option:.2f} tokens per option"
    )

    docs = lm_eval_docs(items, labels, loaded.spec.family == "seq2seq")
    if lm is not None:
        result.same_ids = same_ids(lm, encoded, docs)
    ours: list = [None] * len(items)
    theirs: dict[int, list[float]] = {}
    # Other jobs on the machine come and go: alternating the contenders in rounds (and which goes first)
    # spreads their load over both instead of over whichever ran at the wrong moment. Rounds are cut from
    # the order score() batches in, in multiples of the batch size, so ours' batches stay as in one call.
    order = scorer_order(encoded, loaded.spec.family == "seq2seq")
    prompt_pad, option_pad = padding_shares(encoded, order, args.batch_size, loaded.spec.family == "seq2seq")
    result.notes.append(
        f"padding in ours' batches: {prompt_pad:.0%} of the per-instance prompt tokens, "
        f"{option_pad:.0%} of the option-row tokens"
    )
    size = math.ceil(len(items) / args.rounds / args.batch_size) * args.batch_size
    for round_, start in enumerate(range(0, len(items), size)):
        chunk = order[start : start + size]

        def ours_step(chunk=chunk) -> None:
            scores = run_ours(loaded, [items[i] for i in chunk], args.batch_size, result.ours)
            for index, found in zip(chunk, scores):
                ours[index] = found

        def lm_eval_step(chunk=chunk, round_=round_) -> None:
            name = f"phrasebench_{family}_{kind.replace(' ', '_')}_{round_}"
            write_task(task_root, name, [docs[i] for i in chunk])
            theirs.update(run_lm_eval(lm, task_root, name, len(chunk), result.lm, result.lm_total))

        steps = [ours_step] + ([lm_eval_step] if lm is not None else [])
        for step in steps if round_ % 2 == 0 else steps[::-1]:
            step()
    print(f"  {family} {kind}: ours {rate(len(items), result.ours.wall):.2f} it/s", flush=True)
    if lm is not None:
        result.lm_diff, result.lm_same, worst = compare(ours, [theirs[i] for i in range(len(items))])
        exact = fp64_logliks(loaded, encoded[worst])
        errors = [max(abs(a - b) for a, b in zip(row, exact)) for row in (ours[worst].logliks, theirs[worst])]
        result.notes.append(
            f"largest ours-lm_eval gap {result.lm_diff:.1e} (instance {worst}); against float64 there: "
            f"ours {errors[0]:.1e}, lm_eval {errors[1]:.1e}"
        )
        print(f"  {family} {kind}: lm_eval {rate(len(items), result.lm.wall):.2f} it/s", flush=True)

    stride = max(1, len(items) // max(1, args.naive_items))
    subset = list(range(0, len(items), stride))[: args.naive_items]
    if subset:
        naive = run_naive(loaded, [items[i] for i in subset], result.naive)
        result.naive_items = len(subset)
        result.naive_diff, result.naive_same, _ = compare(
            [ours[i] for i in subset], [s.logliks for s in naive]
        )
        print(f"  {family} {kind}: naive {rate(len(subset), result.naive.wall):.2f} it/s", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=200, help="MMLU questions (seeded sample)")
    parser.add_argument("--phrasings", type=int, default=1, help="study MMLU phrasings, in the study's order")
    parser.add_argument(
        "--naive-items", type=int, default=16, help="instances the naive reference is timed on"
    )
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument(
        "--rounds", type=int, default=4, help="ours and lm_eval alternate in this many rounds"
    )
    parser.add_argument("--threads", type=int, default=2, help="torch threads for every contender")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-lm-eval", action="store_true")
    parser.add_argument("--families", default="seq2seq,causal")
    parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = parser.parse_args()
    models = SMOKE_MODELS if args.smoke else MODELS
    if args.smoke:
        args.questions, args.naive_items, args.rounds = 4, 2, 1
    if not MMLU_DIR.is_dir() or not PHRASINGS_FILE.is_file():
        sys.exit(
            f"the shared benchmark data is not at {SHARED} (expected mmlu/test/*.csv and paper_instructions/)"
        )

    import torch
    import transformers

    torch.set_num_threads(args.threads)
    transformers.logging.set_verbosity_error()
    import logging

    logging.getLogger("lm_eval").setLevel(logging.ERROR)
    logging.getLogger("lm-eval").setLevel(logging.ERROR)

    from evaluation.ml.config import ModelSpec
    from evaluation.ml.loading import load

    questions, corpus = read_questions(args.questions, args.seed)
    phrasings = read_phrasings(args.phrasings)
    families = [f.strip() for f in args.families.split(",") if f.strip()]

    with tempfile.TemporaryDirectory(prefix="phrasebench-bench-") as tmp:
        root = Path(tmp)
        os.environ["HF_DATASETS_CACHE"] = str(root / "datasets-cache")  # no stale caches, nothing left behind
        task_root = root / "tasks"
        task_root.mkdir()
        t0 = time.perf_counter()
        paths = build_models(root / "models", corpus, phrasings, models)
        build_s = time.perf_counter() - t0
        peak = peak_matmul_flops()

        lm_version = "skipped"
        if not args.skip_lm_eval:
            from importlib.metadata import version

            lm_version = version("lm_eval")
        print(
            f"torch {torch.__version__}, transformers {transformers.__version__}, lm_eval {lm_version}; "
            f"{args.threads} torch threads, fp32, CPU; batch size {args.batch_size} (ours: instances; "
            "lm_eval: requests)"
        )
        print(
            f"{args.questions} MMLU questions (seed {args.seed}) x {len(phrasings)} phrasings "
            f"({', '.join(p for p, _ in phrasings)}) = {args.questions * len(phrasings)} instances per case; "
            f"naive reference timed on {args.naive_items} of them"
        )
        print(
            f"models and tokenizers built in {build_s:.1f} s; peak fp32 matmul {peak / 1e9:.1f} GFLOP/s; "
            f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
        )

        results = []
        for family in families:
            loaded = load(ModelSpec(source=str(paths[family]), family=family, dtype="float32"), device="cpu")
            warm_up(loaded.model, loaded.spec.family == "seq2seq")
            params = sum(p.numel() for p in loaded.model.parameters())
            print(
                f"{family}: {models[family][1]}-sized, {params / 1e6:.1f} M parameters, "
                f"vocabulary {len(loaded.tokenizer)}",
                flush=True,
            )
            lm = None
            if not args.skip_lm_eval:
                from lm_eval.models.huggingface import HFLM

                lm = HFLM(
                    pretrained=str(paths[family]),
                    backend=family,
                    device="cpu",
                    dtype="float32",
                    batch_size=args.batch_size,
                )
                warm_up(lm.model, loaded.spec.family == "seq2seq")
            for kind in ("letters", "option text"):
                results.append(bench_case(family, kind, loaded, lm, phrasings, questions, args, task_root))
            del loaded, lm

    print(
        f"\nload average at the end {os.getloadavg()[0]:.2f} (other jobs on the machine make every figure noisier)"
    )
    print_tables(results, peak)
    print(
        f"\ngoal: identical predictions with max |d| <= {TOLERANCE:g}; ours/lm_eval >= 3x, except causal letters: "
        ">= the prefix-sharing token ratio (full-context tokens / tokens with each shared prefix run once)"
    )
    wrong = [f"{r.family} {r.kind}" for r in results if not r.naive_same or not r.naive_diff <= TOLERANCE]
    if wrong:
        sys.exit(f"ours and the naive reference disagree: {', '.join(wrong)}")
    # lm_eval computes the same quantity from the same token ids (docstring), so it must agree as closely.
    wrong = [
        f"{r.family} {r.kind}"
        for r in results
        if r.lm_same is not None and not (r.lm_same and r.lm_diff <= TOLERANCE and r.same_ids)
    ]
    if wrong:
        sys.exit(f"ours and lm_eval disagree: {', '.join(wrong)}")


if __name__ == "__main__":
    main()
