"""The offline demo study end to end, on a tiny recipe: build, register, score, train the four soft-prompt
ablations, print both tables; a second run reuses everything."""

from __future__ import annotations

import io
import json
import re

import pytest
import torch
from django.core.management import call_command
from django.db import connection

from collection.models import Instruction, Task
from evaluation import demo_model
from evaluation.models import LanguageModel, Prediction, SoftPrompt
from evaluation.robustness.outcome import heldout_improvements
from tests.evaluation.splits import heldout_id

pytestmark = pytest.mark.django_db


@pytest.fixture
def tiny_recipe(monkeypatch, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    settings.SOFTPROMPT_DIR = tmp_path / "softprompts"
    monkeypatch.setattr(
        demo_model, "RECIPE", {**demo_model.RECIPE, "size": "tiny", "steps": 5, "generated_per_task": 5}
    )
    monkeypatch.setattr(
        demo_model, "SOFT_PROMPT", {**demo_model.SOFT_PROMPT, "steps": 2, "num_virtual_tokens": 2}
    )
    # A few held-out phrasings per task keep the test quick; the default's 20 is checked without training.
    monkeypatch.setattr(demo_model, "MIN_HELDOUT_UNOBSERVED", 4)
    call_command("load_demo", "--generated", "6")
    # Tiny models: one thread is fastest, and on a shared CPU idle threads spinning cost many times more.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    Task.objects.filter(benchmark__slug="demo").update(eval_sample_size=6)
    yield
    torch.set_num_threads(threads)


def test_reproduce_study_prints_both_tables_from_what_the_app_computed(tiny_recipe, tmp_path):
    out = io.StringIO()
    call_command("reproduce_study", "--quiet", "--json", str(tmp_path / "figures.json"), stdout=out)
    text = out.getvalue()
    written = json.loads((tmp_path / "figures.json").read_text(encoding="utf-8"))
    assert (written["build_seed"], written["database"]) == (0, connection.vendor)
    assert {"observed_avgp", "unobserved_avgp", "gap", "pdr", "split0:ce"} <= set(written["figures"])
    printed_gap = float(text.split("Gap (pp)")[1].split()[0])
    assert abs(printed_gap - written["figures"]["gap"]) <= 0.05  # the table's 0.1-point rounding
    # The tiny recipe is not the one the README's ranges were measured on, and it says so.
    assert "recipe differs from the one the README's ranges were measured on" in text
    assert "Table 1." in text and "Observed" in text and "Unobserved" in text and "Gap (pp)" in text
    assert "Table 2." in text
    table = text.split("Table 2.")[1]
    for ablation in ("ce", "ce+kl", "ce+rep", "ce+kl+rep", "consistency"):
        row = next(line for line in table.splitlines() if line.startswith(f"{ablation} "))
        assert row.split()[1] == "3"  # seeds pooled
    model = LanguageModel.objects.get(name="demo-t5")
    assert model.tuned_on.filter(slug="demotune").exists()
    assert SoftPrompt.objects.filter(model=model, status="succeeded").count() == 5 * 3
    # Every demo task has enough held-out unobserved phrasings for the interval to mean something.
    for task in Task.objects.filter(benchmark__slug="demo"):
        assert demo_model._heldout_unobserved(task) >= demo_model.MIN_HELDOUT_UNOBSERVED
    assert next(line for line in table.splitlines() if line.startswith("batch calibration "))
    assert "Per task" in table and "Methods whose macro CI excludes 0:" in table
    # Consistency stops early on agreement; each seed says where, from its curve.
    for seed in (0, 1, 2):
        assert re.search(
            rf"consistency seed {seed}: (stopped at step \d+ of 2|ran all steps), kept step", table
        )
    # Batch calibration's row is its variant's stored predictions, which the leaderboard reads too.
    calibrated = model.variants.get(kind="calibrated")
    assert Prediction.objects.filter(variant=calibrated).exists()
    # The pooled improvement is the mean over seeds of (soft prompt - base) on the held-out unobserved cells,
    # macro-averaged over tasks: recomputed here from the predictions themselves.
    outcome = next(o for o in heldout_improvements(model) if o.method == "ce")
    softs = list(SoftPrompt.objects.filter(model=model, status="succeeded", config__lambda_kl=0.0))
    softs = [s for s in softs if s.ablation == "ce"]
    base = model.variants.get(kind="base")
    heldout = set.intersection(*(set(s.heldout_revisions.values_list("id", flat=True)) for s in softs))
    per_task = {}
    for task in Task.objects.filter(benchmark__slug="demo"):
        revisions = [
            r
            for r in heldout
            if Instruction.objects.filter(current_revision=r, task=task)
            .exclude(collection__slug="demotune")
            .exists()
        ]
        if not revisions:
            continue

        def accuracy(variant, revisions=revisions):
            rows = Prediction.objects.filter(variant=variant, revision_id__in=revisions)
            return sum(rows.values_list("correct", flat=True)) / rows.count()

        per_task[task.slug] = sum(accuracy(s.variant) for s in softs) / len(softs) - accuracy(base)
    assert outcome.macro.difference == pytest.approx(sum(per_task.values()) / len(per_task))
    assert set(outcome.per_task) == set(per_task) and len(outcome.seeds) == 3
    predictions = Prediction.objects.count()
    # Again: everything is cached, nothing is trained or scored twice.
    call_command("reproduce_study", "--quiet", stdout=io.StringIO())
    assert SoftPrompt.objects.filter(model=model).count() == 5 * 3
    assert Prediction.objects.count() == predictions


def test_every_demo_task_gets_twenty_held_out_unobserved_phrasings_from_the_generator():
    call_command("load_demo", "--generated", "0")
    demo_model.heldout_phrasings_ensure(lambda text: None)
    for task in Task.objects.filter(benchmark__slug="demo"):
        assert demo_model._heldout_unobserved(task) >= 20
        approved = task.instructions.filter(status="approved")
        assert approved.count() >= 60
        # The demo model is tuned on its three observed phrasings only; the rest are unobserved for it.
        assert approved.filter(collection__slug="demotune").count() == 3
    counts = Instruction.objects.count()
    demo_model.heldout_phrasings_ensure(lambda text: None)
    assert Instruction.objects.count() == counts


def test_with_several_split_seeds_each_split_trains_its_own_soft_prompts_and_table_3_sets_them_side_by_side(
    tiny_recipe, monkeypatch
):
    # One method and one seed keep it quick; the splits are what is under test.
    monkeypatch.setattr(demo_model, "ABLATIONS", {"ce": demo_model.ABLATIONS["ce"]})
    monkeypatch.setattr(demo_model, "SEEDS", (0,))
    out = io.StringIO()
    call_command("reproduce_study", "--quiet", "--split-seeds", "0", "4", stdout=out)
    text = out.getvalue()
    model = LanguageModel.objects.get(name="demo-t5")
    softs = {s.split_seed: s for s in SoftPrompt.objects.filter(model=model, status="succeeded")}
    assert set(softs) == {0, 4}
    approved = set(
        Instruction.objects.filter(status="approved", task__benchmark__slug="demo").values_list(
            "id", flat=True
        )
    )
    for split_seed, soft in softs.items():
        heldout = set(soft.heldout_revisions.values_list("instruction_id", flat=True))
        assert heldout == {i for i in approved if heldout_id(i, seed=split_seed)}
        # Scored on its own split's held-out phrasings, whatever the app's split is.
        scored = set(
            Prediction.objects.filter(variant=soft.variant).values_list("revision__instruction_id", flat=True)
        )
        assert scored == heldout
        for task in Task.objects.filter(benchmark__slug="demo", parent=None):
            assert demo_model._heldout_unobserved(task, split_seed) >= demo_model.MIN_HELDOUT_UNOBSERVED
    assert softs[0].heldout_revisions.count() and set(softs[0].heldout_revisions.all()) != set(
        softs[4].heldout_revisions.all()
    )
    assert "split seed 0 (the app's split)" in text and "split seed 4" in text
    table_3 = text.split("Table 3.")[1]
    row = next(line for line in table_3.splitlines() if line.startswith("ce "))
    # Each split's cell is that split's outcome; the mean is over splits.
    found = re.findall(r"([+-]\d+\.\d) \[([+-]\d+\.\d), ([+-]\d+\.\d)\]", row)
    outcomes = [
        next(o for o in heldout_improvements(model, split_seed=seed) if o.method == "ce") for seed in (0, 4)
    ]
    assert [float(d) for d, _, _ in found] == [round(100 * o.macro.difference, 1) for o in outcomes]
    mean = sum(100 * o.macro.difference for o in outcomes) / 2
    assert f"{mean:+.1f}" in row
    calibrated = next(line for line in table_3.splitlines() if line.startswith("batch calibration "))
    assert calibrated.count("[") == 2  # both splits: the app's from the variant, the other computed
    assert "Methods whose CI excludes 0 on the same side on every split:" in table_3


def test_the_demo_model_comes_out_the_same_whatever_the_caller_s_thread_count(
    tiny_recipe, monkeypatch, settings
):
    import hashlib

    # The demo's size (the tiny one is too small for torch to split its sums by thread), few steps.
    monkeypatch.setattr(demo_model, "RECIPE", {**demo_model.RECIPE, "size": "demo", "steps": 20})
    built = []

    def build_only(say, split_seeds):
        path = demo_model.demo_model_build(say)
        built.append(
            (torch.get_num_threads(), hashlib.sha256((path / "model.safetensors").read_bytes()).hexdigest())
        )

    monkeypatch.setattr(demo_model, "_demo_study_ensure", build_only)
    base = settings.VAR_DIR
    for outer in (2, 1):
        torch.set_num_threads(outer)
        settings.VAR_DIR = base / f"threads-{outer}"
        demo_model.demo_study_ensure(lambda text: None)
        assert torch.get_num_threads() == outer  # restored
    assert built[0] == built[1] and built[0][0] == demo_model.RECIPE["threads"]


def test_its_figures_are_judged_against_the_measured_ranges():
    from evaluation.management.commands.reproduce_study import against_ranges

    ranges = {
        "recipe": {k: v for k, v in demo_model.recipe().items() if k != "seed"},
        "runs": 4,
        "build_seeds": [0, 1, 2],
        "databases": ["postgresql", "sqlite"],
        "figures": {"gap": [5.0, 9.0], "split0:ce": [1.0, 3.0]},
    }
    inside = against_ranges(
        {"build_seed": 1, "database": "sqlite", "figures": {"gap": 7.0, "split0:ce": 3.0}}, ranges
    )
    assert inside[-1] == "All inside the measured ranges." and "inside [5.0, 9.0]" in inside[1]
    outside = against_ranges(
        {"build_seed": 3, "database": "sqlite", "figures": {"gap": 9.5, "split0:ce": 2}}, ranges
    )
    assert "OUTSIDE [5.0, 9.0]" in outside[1] and outside[-1].startswith("1 figure(s) outside")
    assert "is missing" in against_ranges({"figures": {}}, None)[0]
