"""What one GPU session's bin/gpu-check wrote, held against issue 28's goals, as Markdown for the README.

    python3 bench/gpu_report.py [DIR]    # DIR: bin/gpu-check's output folder (default var/gpu/out)

The standard library only, so that it runs on the GPU machine too (bin/gpu-check runs it last). It reads
after-<family>.json (this checkout's bench/gpu_check.py --json) and, where there is one, before-<family>.json
(the code before issue 28 on the same card), and prints for each model and option kind: instances/s and MFU
before at the fixed batch, after at the same batch and with the default batching (the token budget it found,
its padding share), after over before, lm_eval's best and ours over it. Then each goal of the issue, met or
not, with the figure; a dry run's MFU is n/a and is said to be. Exit status 0 when it could read the after
files, whether or not the goals are met: the figures are the report.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

FAMILIES = {"causal": "Llama-7B config", "seq2seq": "Flan-T5-XL config"}
KINDS = ("letters", "texts")
# Issue 28's goals, measured on an H200 by bench/gpu_check.py.
MFU_GOAL = {"causal": 0.40, "seq2seq": 0.25}
OVER_LM_EVAL = 1.5  # ours over lm_eval's best, in every case ...
OVER_LM_EVAL_REPEATS = 3.0  # ... and where lm_eval repeats work: seq2seq, and option texts
CHECK_SECONDS = 8 * 60  # the whole check
# The pass/fail checks bench/gpu_check.py makes itself, by the key of their figures.
CHECKS = {
    "fast_vs_naive_letters": "fast vs naive, letters (fp32 tolerance, bf16 factor, clear predictions)",
    "fast_vs_naive_texts": "fast vs naive, option texts",
    "fast_vs_naive_letters_metaspace": "fast vs naive, letters, Metaspace tokenizer (prompts tokenized whole)",
    "fast_vs_naive_texts_metaspace": "fast vs naive, option texts, Metaspace tokenizer",
    "transfers": "one device-to-host transfer per batch",
    "lm_eval": "lm_eval reads the same ids and agrees on clear predictions",
    "training": "soft-prompt training step",
    "oom_backoff": "out-of-memory back-off and token-budget search",
}


def read(directory: Path, tag: str, family: str) -> dict | None:
    """One family's figures, with the run's device and whether it was a dry run."""
    path = directory / f"{tag}-{family}.json"
    if not path.exists():
        return None
    whole = json.loads(path.read_text(encoding="utf-8"))
    # bench/gpu_check.py writes its figures after every check and its verdict ("ok") last: a file without one
    # is a family cut short, by bin/gpu-check's time limit or a crash.
    return {
        **whole[FAMILIES[family]],
        "device": whole["device"],
        "dry": whole["dry"],
        "complete": "ok" in whole,
    }


def measured(figures: dict | None) -> dict | None:
    """A throughput's figures, or None where its check raised (bench/gpu_check.py keeps {"ok": False,
    "error": ...} there) or never ran."""
    return figures if figures and "instances_per_s" in figures else None


def fixed_batch_key(figures: dict, kind: str) -> str | None:
    """The key of the fixed-batch throughput (64 on a GPU, 16 in a dry run): throughput_<kind>_batch_<N>."""
    return next((k for k in figures if k.startswith(f"throughput_{kind}_batch_")), None)


def rate(t: dict | None) -> str:
    if not t:
        return "-"
    mfu = f"MFU {100 * t['mfu']:.1f}%" if t.get("mfu") is not None else "MFU n/a"
    return f"{t['instances_per_s']:.0f}/s, {mfu}"


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a and b else "-"


def table(after: dict[str, dict], before: dict[str, dict]) -> list[str]:
    lines = [
        "| model | options | before, fixed batch | after, fixed batch | after, default batching | after/before "
        "| lm_eval best | ours/lm_eval |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for family, figures in after.items():
        old = before.get(family) or {}
        for kind in KINDS:
            default = measured(figures.get(f"throughput_{kind}"))
            fixed_key = fixed_batch_key(figures, kind)
            fixed = measured(figures.get(fixed_key)) if fixed_key else None
            # Before issue 28 the check timed one fixed batch, under the default key.
            was = measured(old.get(f"throughput_{kind}"))
            batching = ""
            if default:
                budget = default.get("token_budget")
                size = f"budget {budget:,} tokens" if budget else f"batch {default.get('largest_batch')}"
                batching = f" ({size}, padding {100 * (default.get('padding_share') or 0):.0f}%)"
            theirs = measured((figures.get("lm_eval") or {}).get(kind)) or {}
            lm_eval = (
                f"{theirs['instances_per_s']:.0f}/s (batch {theirs['best_batch_size']})" if theirs else "-"
            )
            over = ratio(theirs.get("ours_over_lm_eval"), 1.0) if theirs else "-"
            after_over_before = ratio(fixed and fixed["instances_per_s"], was and was["instances_per_s"])
            lines.append(
                f"| {FAMILIES[family]} | {kind} | {rate(was)} | {rate(fixed)} | {rate(default)}{batching} "
                f"| {after_over_before} | {lm_eval} | {over} |"
            )
    return lines


def goals(after: dict[str, dict], lost: tuple[str, ...] = ()) -> list[tuple[str, str, bool | None]]:
    """(goal, figure, met): met is None where the figure does not exist (a dry run's MFU, lm_eval skipped).
    `lost`: families that ran (a log) and left no figures (died building, or killed in their first check)."""
    out = [
        (f"{FAMILIES[family]}: every check ran", "none did: no figures (see its log)", False)
        for family in lost
    ]
    for family, figures in after.items():
        cut = not figures.get("complete", True)
        if cut:
            ran = [k for k, v in figures.items() if isinstance(v, dict)]
            out.append(
                (f"{FAMILIES[family]}: every check ran", f"cut short after {', '.join(ran) or 'none'}", False)
            )
        for kind in KINDS:
            timed = figures.get(f"throughput_{kind}") or {}
            mfu = timed.get("mfu")
            goal = f"{FAMILIES[family]} {kind}: MFU >= {100 * MFU_GOAL[family]:.0f}%"
            if "error" in timed:
                out.append((goal, f"its check raised: {timed['error']}", False))
                continue
            if cut and not timed:
                out.append((goal, "did not run", False))
                continue
            out.append(
                (
                    goal,
                    f"{100 * mfu:.1f}%" if mfu is not None else "n/a (no CUDA peak: a dry run)",
                    None if mfu is None else mfu >= MFU_GOAL[family],
                )
            )
        for kind in KINDS:
            timed = (figures.get("lm_eval") or {}).get(kind) or {}
            theirs = timed.get("ours_over_lm_eval")
            need = OVER_LM_EVAL_REPEATS if family == "seq2seq" or kind == "texts" else OVER_LM_EVAL
            missing = "n/a (no throughput of ours to compare)" if timed else "n/a (lm_eval not run)"
            out.append(
                (
                    f"{FAMILIES[family]} {kind}: ours >= {need:g}x lm_eval's best",
                    f"{theirs:.2f}x" if theirs else missing,
                    None if not theirs else theirs >= need,
                )
            )
        for key, what in CHECKS.items():
            if key not in figures and cut and not key.endswith("_metaspace"):
                out.append((f"{FAMILIES[family]}: {what}", "did not run", False))
            elif "skipped" in figures.get(key, {}):
                out.append((f"{FAMILIES[family]}: {what}", f"skipped: {figures[key]['skipped']}", None))
            elif key in figures:
                out.append(
                    (
                        f"{FAMILIES[family]}: {what}",
                        "ok"
                        if figures[key]["ok"]
                        else f"FAILED ({figures[key]['error']})"
                        if "error" in figures[key]
                        else "FAILED",
                        figures[key]["ok"],
                    )
                )
    seconds = sum(f.get("seconds", 0.0) for f in after.values())
    cut = bool(lost) or any(not f.get("complete", True) for f in after.values())
    out.append(
        (
            f"the whole check within {CHECK_SECONDS // 60} minutes",
            f"{seconds:.0f} s" + (" when a family was cut short" if cut else ""),
            seconds <= CHECK_SECONDS and not cut,
        )
    )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("directory", nargs="?", type=Path, default=Path("var/gpu/out"))
    args = parser.parse_args(argv)
    after = {f: figures for f in FAMILIES if (figures := read(args.directory, "after", f)) is not None}
    if not after:
        print(f"no after-<family>.json in {args.directory}: run bin/gpu-check first", file=sys.stderr)
        return 2
    before = {f: figures for f in FAMILIES if (figures := read(args.directory, "before", f)) is not None}
    env = args.directory / "env.txt"
    if env.exists():
        print("\n".join(f"    {line}" for line in env.read_text(encoding="utf-8").splitlines()))
    if any(f["dry"] for f in [*after.values(), *before.values()]):
        print("\nA DRY RUN (CPU, tiny configurations): its speeds and verdicts say nothing about a GPU.")
    print()
    print("\n".join(table(after, before)))
    if not before:
        print(
            "\n(no before-<family>.json: bin/gpu-check --before times the code before issue 28 on the same card)"
        )
    print("\nIssue 28's goals:")
    lost = tuple(f for f in FAMILIES if f not in after and (args.directory / f"after-{f}.log").exists())
    for goal, figure, met in goals(after, lost):
        verdict = "n/a" if met is None else "met" if met else "NOT met"
        print(f"- {goal}: {figure}, {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
