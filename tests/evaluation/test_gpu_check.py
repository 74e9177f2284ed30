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
    assert gpu_check().main(["--dry", "--json", str(out)]) == 0
    assert torch.get_num_threads() == threads
    figures = json.loads(out.read_text())
    assert figures["ok"] and figures["dry"]
    for name in ("Flan-T5-XL config", "Llama-7B config"):
        model = figures[name]
        for case in ("letters", "texts"):
            check = model[f"fast_vs_naive_{case}"]
            assert check["ok"] and check["max_abs_diff_fast_vs_naive"] <= 1e-4  # fp32 on the CPU
            assert check["clear_predictions_compared"] > 0
            assert model[f"throughput_{case}"]["instances_per_s"] > 0
        assert model["training"]["ok"] and model["training"]["seconds_per_step"] > 0
        backoff = model["oom_backoff"]
        assert backoff["largest_batch_that_ran"] < backoff["start_batch"]
    assert "All checks passed." in capsys.readouterr().out


@pytest.mark.gpu
def test_the_full_size_check_passes_on_a_cuda_device(tmp_path):
    out = tmp_path / "figures.json"
    assert gpu_check().main(["--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert figures["Llama-7B config"]["parameters"] > 6e9
    assert figures["Flan-T5-XL config"]["dtype"] == "bfloat16"
