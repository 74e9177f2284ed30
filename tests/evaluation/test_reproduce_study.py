"""The offline demo study end to end, on a tiny recipe: build, register, score, train the four soft-prompt
ablations, print both tables; a second run reuses everything."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from evaluation import demo_model
from evaluation.models import LanguageModel, Prediction, SoftPrompt

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
    call_command("load_demo")
    from collection.models import Task

    Task.objects.filter(benchmark__slug="demo").update(eval_sample_size=6)


def test_reproduce_study_prints_both_tables_from_what_the_app_computed(tiny_recipe):
    out = io.StringIO()
    call_command("reproduce_study", "--quiet", stdout=out)
    text = out.getvalue()
    assert "Table 1." in text and "Observed" in text and "Unobserved" in text and "Gap (pp)" in text
    assert "Table 2." in text
    for ablation in ("(ce)", "(ce+kl)", "(ce+rep)", "(ce+kl+rep)"):
        assert f"+ soft prompt {ablation}" in text
    model = LanguageModel.objects.get(name="demo-t5")
    assert model.tuned_on.filter(slug="demotune").exists()
    assert SoftPrompt.objects.filter(model=model, status="succeeded").count() == 4
    predictions = Prediction.objects.count()
    # Again: everything is cached, nothing is trained or scored twice.
    call_command("reproduce_study", "--quiet", stdout=io.StringIO())
    assert SoftPrompt.objects.filter(model=model).count() == 4
    assert Prediction.objects.count() == predictions
