"""bench/gpu_check.py: the dry run (CPU, tiny configs of the same architectures) on every test run, and the
real check (Flan-T5-XL and Llama-7B configs in bf16) where there is a CUDA device."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "gpu_check.py"


def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_dry_run_checks_scoring_training_and_back_off_on_the_cpu(tmp_path, capsys):
    threads = torch.get_num_threads()
    out = tmp_path / "figures.json"
    assert gpu_check().main(["--dry", "--lm-eval", "none", "--json", str(out)]) == 0
    assert torch.get_num_threads() == threads
    figures = json.loads(out.read_text(encoding="utf-8"))
    assert figures["ok"] and figures["dry"]
    from transformers import LlamaForCausalLM, T5ForConditionalGeneration

    for name, model_class in (
        ("Flan-T5-XL config", T5ForConditionalGeneration),
        ("Llama-7B config", LlamaForCausalLM),
    ):
        model = figures[name]
        # SDPA wherever the installed transformers has it for the architecture (T5 from 5.15 on).
        assert model["attention"] == ("sdpa" if model_class._supports_sdpa else "eager")
        # The causal model also with a Metaspace tokenizer (Llama-2's under transformers 5): prompts tokenized whole.
        tokenizers = ("", "_metaspace") if model_class is LlamaForCausalLM else ("",)
        assert {k for k in model if k.startswith("fast_vs_naive_")} == {
            f"fast_vs_naive_{case}{style}" for case in ("letters", "texts") for style in tokenizers
        }
        for case in [k.removeprefix("fast_vs_naive_") for k in model if k.startswith("fast_vs_naive_")]:
            check = model[f"fast_vs_naive_{case}"]
            assert check["ok"] and check["max_abs_diff_fast_vs_naive"] <= 1e-4  # fp32 on the CPU
            assert check["fp32_ok"] and check["fp32_max_abs_diff_fast_vs_naive"] <= 1e-4
            assert check["clear_predictions_compared"] > 0
        for case in ("letters", "texts"):
            assert model[f"throughput_{case}"]["instances_per_s"] > 0
            assert model[f"throughput_{case}"]["batching"] == "count"  # the CPU's default
        assert model["transfers"]["ok"] and model["transfers"]["transfers_per_batch"] == 1
        assert model["profile"]["top"]
        assert model["training"]["ok"] and model["training"]["seconds_per_step"] > 0
        backoff = model["oom_backoff"]
        assert backoff["largest_batch_that_ran"] < backoff["start_batch"]
        assert backoff["token_budget_found"] and backoff["tokens_out_of_memory"] > 0
    assert "All checks passed." in capsys.readouterr().out


@pytest.fixture(scope="module")
def dry_models(tmp_path_factory):
    module = gpu_check()
    root = tmp_path_factory.mktemp("gpu-check")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        built = {
            f: module.build(f, True, torch.device("cpu"), root, torch.float32)[0]
            for f in ("seq2seq", "causal")
        }
    finally:
        torch.set_num_threads(threads)
    return module, built


def planted_items(module):
    # Preambles of random words: prompts of different lengths, so batches carry padding.
    return module.items_for(module.questions(3, 7, words=6), "texts")


@pytest.mark.parametrize("family", ["seq2seq", "causal"])
def test_the_fp32_check_fails_when_the_fast_path_attends_to_padding(dry_models, family, monkeypatch):
    from evaluation.ml import scoring

    module, built = dry_models
    loaded, items = built[family], planted_items(module)
    assert module.check_fast_vs_naive(loaded, items)["fp32_ok"]  # the same items pass without the bug
    real_pad = scoring.pad

    def wrong_mask(rows, pad_id, device):
        ids, mask = real_pad(rows, pad_id, device)
        return ids, torch.ones_like(mask)  # padding counted as text

    monkeypatch.setattr(scoring, "pad", wrong_mask)
    check = module.check_fast_vs_naive(loaded, items)
    assert not check["ok"] and not check["fp32_ok"] and check["fp32_items_over_tolerance"] > 0


def test_the_fp32_check_fails_when_the_fast_path_shifts_positions(dry_models):
    module, built = dry_models
    loaded, items = built["causal"], planted_items(module)

    def shifted(module_, args, kwargs):
        # Only the fast path passes positions (the naive reference lets the model count from 0).
        if kwargs.get("position_ids") is not None:
            kwargs["position_ids"] = kwargs["position_ids"] + 1
        return args, kwargs

    hook = loaded.model.model.register_forward_pre_hook(shifted, with_kwargs=True)
    try:
        check = module.check_fast_vs_naive(loaded, items)
    finally:
        hook.remove()
    # Random weights attend almost uniformly, so positions matter little: the shift moves this tiny model's
    # log-likelihoods by a few thousandths only, still over the tolerance, a thousand times the fp32 rounding.
    assert not check["ok"] and check["fp32_items_over_tolerance"] > 0


def test_the_back_off_check_fails_when_the_token_budget_search_collapses(dry_models, monkeypatch):
    from evaluation.ml import scoring

    module, built = dry_models
    loaded = built["causal"]
    items = module.items_for(module.questions(16, 7, words=20), "texts")
    assert module.check_backoff(loaded, items, 16, None)["ok"]
    real = scoring.TokenBudget._next

    def collapsed(budget):  # after the first out-of-memory, one token: no more out-of-memory, nor batches
        return 1 if budget.fails is not None else real(budget)

    monkeypatch.setattr(scoring.TokenBudget, "_next", collapsed)
    check = module.check_backoff(loaded, items, 16, None)
    assert not check["ok"] and check["tokens_out_of_memory_last_pass"] == 0


def test_lm_eval_is_timed_beside_ours_on_the_same_model_objects(dry_models):
    pytest.importorskip("lm_eval")
    module, built = dry_models
    loaded = built["causal"]
    items = module.items_for(module.questions(2, 2), "letters")
    keep: dict = {}
    module.check_fast_vs_naive(loaded, items, keep)
    ours = {"letters": module.check_throughput(loaded, items, None, None)}
    figures = module.check_lm_eval(loaded, [(items, keep)], {"letters": items}, ours, [4], None)
    assert figures["ok"] and figures["same_ids"] and figures["letters"]["ours_over_lm_eval"] > 0
    # Where our checks raised (no fp32 winners, no throughput of ours), lm_eval's own figures still come.
    figures = module.check_lm_eval(loaded, [(items, {})], {"letters": items}, {}, [4], None)
    assert figures["clear_predictions_compared"] == 0 and figures["letters"]["ours_over_lm_eval"] is None
    assert figures["letters"]["instances_per_s"] > 0


def test_a_check_that_raises_fails_alone_and_what_was_measured_is_kept(capsys):
    """A GPU session is rare: one check's exception (an out-of-memory at batch size one, an lm_eval release
    that raises something new) used to lose its whole family's figures, and a time limit all of them."""
    module = gpu_check()
    out = {"parameters": 6.7e9, "weights_gib": 12.6, "dtype": "bfloat16", "attention": "sdpa", "seconds": 0.0}
    saved = []

    def transfers():
        return {"transfers": 2, "batches": 2, "device_syncs_per_batch": None, "ok": True}

    def training():
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (injected)")

    module.attempt(out, "transfers", transfers, lambda: saved.append(dict(out)))
    module.attempt(out, "training", training, lambda: saved.append(dict(out)))
    assert out["training"] == {
        "ok": False,
        "error": "OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB (injected)",
    }
    assert [sorted(k for k in s if k in ("transfers", "training")) for s in saved] == [
        ["transfers"],
        ["training", "transfers"],
    ]  # written after each check, not once at the end
    module.report_family("Llama-7B config", out)
    printed = capsys.readouterr().out
    assert "transfers FAILED" not in printed and "] training FAILED" in printed
    assert "training: ERROR OutOfMemoryError: CUDA out of memory" in printed
    assert "device-to-host transfers: 2 in 2 batches  ok" in printed


def test_the_gpu_report_says_which_checks_raised(tmp_path, capsys):
    figures = _figures(mfu=0.41, rate=400.0, over_lm_eval=3.5)
    figures["throughput_texts"] = {"ok": False, "error": "RuntimeError: CUDA error: an illegal memory access"}
    figures["training"] = {"ok": False, "error": "OutOfMemoryError: CUDA out of memory"}
    (tmp_path / "after-causal.json").write_text(
        json.dumps({"device": "cuda", "dry": False, "Llama-7B config": figures, "ok": False}),
        encoding="utf-8",
    )
    # Cut short by its time limit: figures written after each check, and no verdict ("ok") at the end.
    cut = {"throughput_letters": figures["throughput_letters"], "lm_eval": {"skipped": "not installed"}}
    (tmp_path / "after-seq2seq.json").write_text(
        json.dumps({"device": "cuda", "dry": False, "Flan-T5-XL config": {"seconds": 250.0, **cut}}),
        encoding="utf-8",
    )
    assert _gpu_report().main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| Llama-7B config | texts | - | 200/s, MFU 41.0% | - |" in out
    assert "- Llama-7B config texts: MFU >= 40%: its check raised: RuntimeError: CUDA error" in out
    assert (
        "- Llama-7B config: soft-prompt training step: FAILED (OutOfMemoryError: CUDA out of memory)" in out
    )
    assert "- Flan-T5-XL config: every check ran: cut short after throughput_letters, lm_eval, NOT met" in out
    assert "- Flan-T5-XL config texts: MFU >= 25%: did not run, NOT met" in out
    assert "- Flan-T5-XL config: soft-prompt training step: did not run, NOT met" in out
    assert "lm_eval reads the same ids and agrees on clear predictions: skipped: not installed, n/a" in out
    assert "- the whole check within 8 minutes: 400 s when a family was cut short, NOT met" in out
    # A family that died before its first check wrote no figures, only its log.
    (tmp_path / "after-seq2seq.json").unlink()
    (tmp_path / "after-seq2seq.log").write_text("Traceback ...\n", encoding="utf-8")
    assert _gpu_report().main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "- Flan-T5-XL config: every check ran: none did: no figures (see its log), NOT met" in out
    assert "- the whole check within 8 minutes: 150 s when a family was cut short, NOT met" in out


@pytest.mark.gpu
def test_the_full_size_check_passes_on_a_cuda_device(tmp_path):
    out = tmp_path / "figures.json"
    assert gpu_check().main(["--json", str(out)]) == 0
    figures = json.loads(out.read_text(encoding="utf-8"))
    assert figures["Llama-7B config"]["parameters"] > 6e9
    assert figures["Flan-T5-XL config"]["dtype"] == "bfloat16"


def _gpu_report():
    spec = importlib.util.spec_from_file_location("gpu_report", SCRIPT.with_name("gpu_report.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _figures(mfu: float, rate: float, over_lm_eval: float, *, fixed: int = 64, ok: bool = True) -> dict:
    timed = {"instances_per_s": rate, "mfu": mfu, "token_budget": 65536, "padding_share": 0.05}
    return {
        "seconds": 150.0,
        **{f"throughput_{kind}": timed for kind in ("letters", "texts")},
        **{
            f"throughput_{kind}_batch_{fixed}": {**timed, "instances_per_s": rate / 2}
            for kind in ("letters", "texts")
        },
        "lm_eval": {
            "ok": True,
            **{
                k: {
                    "instances_per_s": rate / over_lm_eval,
                    "best_batch_size": "256",
                    "ours_over_lm_eval": over_lm_eval,
                }
                for k in ("letters", "texts")
            },
        },
        "training": {"ok": ok},
    }


def test_the_gpu_report_holds_the_figures_against_the_issues_goals(tmp_path, capsys):
    def write(tag, family, figures):
        name = {"causal": "Llama-7B config", "seq2seq": "Flan-T5-XL config"}[family]
        (tmp_path / f"{tag}-{family}.json").write_text(
            json.dumps({"device": "cuda", "dry": False, name: figures, "ok": True}), encoding="utf-8"
        )

    write("after", "causal", _figures(mfu=0.41, rate=400.0, over_lm_eval=3.5))  # every goal met
    write(
        "after", "seq2seq", _figures(mfu=0.20, rate=900.0, over_lm_eval=2.0, ok=False)
    )  # MFU, ratio, training not
    write("before", "causal", {"throughput_letters": {"instances_per_s": 100.0, "mfu": 0.05}})
    assert _gpu_report().main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert (
        "| Llama-7B config | letters | 100/s, MFU 5.0% | 200/s, MFU 41.0% | 400/s, MFU 41.0% (budget 65,536"
        in out
    )
    assert (
        "| 2.00x | 114/s (batch 256) | 3.50x |" in out
    )  # after over before at the fixed batch; ours over lm_eval
    assert "- Llama-7B config letters: MFU >= 40%: 41.0%, met" in out
    assert "- Llama-7B config texts: ours >= 3x lm_eval's best: 3.50x, met" in out
    assert "- Flan-T5-XL config letters: MFU >= 25%: 20.0%, NOT met" in out
    assert "- Flan-T5-XL config letters: ours >= 3x lm_eval's best: 2.00x, NOT met" in out
    assert "- Flan-T5-XL config: soft-prompt training step: FAILED, NOT met" in out
    assert "- the whole check within 8 minutes: 300 s, met" in out
    assert "DRY RUN" not in out


def test_the_causal_model_is_also_checked_with_prompts_tokenized_whole(tmp_path):
    """The byte-level tokenizer's prompts are tokenized in pieces (GPT-2's pipeline allows it); the Metaspace
    one's, as Llama-2's under transformers 5, whole: the GPU check runs the fast path both ways."""
    from evaluation.ml.encoding import Encoder
    from evaluation.ml.families import CAUSAL

    module = gpu_check()
    loaded, whole = module.build("causal", True, torch.device("cpu"), tmp_path, torch.float32)
    settings = dict(family=CAUSAL, add_special_tokens=True, max_tokens=None, side="keep_end")
    assert Encoder(loaded.tokenizer, **settings).piecewise
    assert not Encoder(whole, **settings).piecewise
    with module.tokenized_by(loaded, whole):
        assert loaded.tokenizer is whole
    assert loaded.tokenizer is not whole
    assert module.build("seq2seq", True, torch.device("cpu"), tmp_path, torch.float32)[1] is None
