"""Batch calibration as a model variant: the rule, its stored predictions (computed from the base model's
stored option scores, on held-out phrasings the base has scored in full), its figures on the held-out views
only, following its base, and made from the model page and the command."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from collection.models import Collection, Instance, Task
from collection.selectors import task_eval_sample_ids
from evaluation import tasks
from evaluation.ml.config import ConfigError
from evaluation.models import (
    BenchmarkSummary,
    LanguageModel,
    PhrasingResult,
    Prediction,
    TaskSummary,
    VariantKind,
)
from evaluation.robustness import calibration
from evaluation.robustness.outcome import calibration_outcome
from evaluation.runs import scoring
from evaluation.split import is_heldout

# --- The rule -------------------------------------------------------------------------------------------


def test_calibration_removes_a_phrasing_s_bias_towards_one_option():
    # The phrasing pushes every instance towards option 0 by 3 nats; underneath, the model knows the answer
    # (the gold option gets +1). Plain argmax always says 0; calibrated, it finds the gold option.
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 2, size=40)
    logliks = np.array([3.0, 0.0]) + np.eye(2)[gold] + rng.normal(0, 0.1, (40, 2))
    assert np.mean(np.argmax(logliks, axis=1) == gold) == np.mean(gold == 0)
    assert np.all(np.argmax(calibration.calibrated_scores(logliks), axis=1) == gold)


def test_calibration_leaves_an_unbiased_phrasing_as_it_was():
    rng = np.random.default_rng(1)
    logliks = np.eye(3)[np.arange(60) % 3] * 2 + rng.normal(0, 0.3, (60, 3))
    calibrated = calibration.calibrated_scores(logliks)
    assert np.array_equal(np.argmax(calibrated, axis=1), np.argmax(logliks, axis=1))


def test_calibrated_scores_are_log_p_less_the_log_of_the_batch_mean_probability():
    logliks = np.array([[-1.0, -2.0, -30.0], [-3.0, -0.5, -40.0]])
    p = np.exp(logliks) / np.exp(logliks).sum(axis=1, keepdims=True)
    expected = np.log(p) - np.log(p.mean(axis=0))
    assert np.allclose(calibration.calibrated_scores(logliks), expected)
    # A probability that underflows in linear space still gets a finite score.
    assert np.isfinite(calibration.calibrated_scores([[0.0, -2000.0], [0.0, -2100.0]])).all()


# --- A model whose stored scores are made up: the variant's predictions follow the rule -------------------


@pytest.fixture
def synthetic(db):
    """A model (never loaded) whose base predictions on the demo's held-out phrasings are written by hand:
    each phrasing favours option 0 by 3 nats, and the gold option gets 1 more."""
    # Ten generated phrasings per task besides the six: some held-out phrasings are unobserved whatever ids
    # the database hands out (the split hashes them), so every held-out view has rows.
    call_command("load_demo", "--generated", "10")
    Task.objects.filter(benchmark__slug="demo").update(eval_sample_size=12)
    model = LanguageModel.objects.create(name="synthetic", source="/nowhere", family="seq2seq")
    model.tuned_on.set([Collection.objects.get(slug="demotune")])
    base = scoring.base_variant(model)
    rng = np.random.default_rng(0)
    heldout = [r for r in scoring.approved_revisions(model=model) if is_heldout(r.instruction.stable_key)]
    rows = []
    for revision in heldout:
        task = revision.instruction.task
        for instance in Instance.objects.filter(id__in=task_eval_sample_ids(task)):
            width = len(instance.options)
            logliks = np.zeros(width) + rng.normal(0, 0.1, width)
            logliks[0] += 3.0
            logliks[instance.gold] += 1.0
            predicted = int(np.argmax(logliks))
            rows.append(
                Prediction(
                    variant=base,
                    revision=revision,
                    instance=instance,
                    logliks=logliks.tolist(),
                    lengths=[1] * width,
                    predicted=predicted,
                    correct=predicted == instance.gold,
                )
            )
    Prediction.objects.bulk_create(rows)
    return model, base, heldout


def test_the_calibrated_variant_stores_the_rule_s_predictions_on_held_out_phrasings(synthetic):
    model, base, heldout = synthetic
    report = calibration.variant_calibrate(model=model)
    variant = calibration.calibrated_variant(model)
    assert variant.kind == VariantKind.CALIBRATED and str(variant) == "synthetic + batch calibration"
    assert report.phrasings == len(heldout) and not report.skipped and not report.waiting
    for revision in heldout:
        sample = task_eval_sample_ids(revision.instruction.task)
        base_rows = dict(
            Prediction.objects.filter(variant=base, revision=revision).values_list("instance_id", "logliks")
        )
        expected = np.argmax(calibration.calibrated_scores([base_rows[i] for i in sample]), axis=1)
        stored = dict(
            Prediction.objects.filter(variant=variant, revision=revision).values_list(
                "instance_id", "predicted"
            )
        )
        assert [stored[i] for i in sample] == list(expected)

    # The bias is mostly gone: the base model says 0 whatever the gold; calibrated, most answers are right.
    def accuracy(variant):
        return np.mean(Prediction.objects.filter(variant=variant).values_list("correct", flat=True))

    assert accuracy(variant) > 0.8 and accuracy(variant) > accuracy(base) + 0.3
    # Its figures: held-out sets only, like a soft prompt's, from the aggregate path.
    sets = set(TaskSummary.objects.filter(variant=variant).values_list("phrasing_set", flat=True))
    assert sets == {"heldout", "heldout_unobserved"}
    assert (
        set(BenchmarkSummary.objects.filter(variant=variant).values_list("phrasing_set", flat=True)) == sets
    )
    assert PhrasingResult.objects.filter(variant=variant).count() == len(heldout)
    # Again: the same cells, rewritten.
    cells = Prediction.objects.filter(variant=variant).count()
    calibration.variant_calibrate(model=model)
    assert Prediction.objects.filter(variant=variant).count() == cells


def test_the_outcome_reads_the_variant_s_predictions(synthetic):
    model, base, heldout = synthetic
    calibration.variant_calibrate(model=model)
    outcome = calibration_outcome(model)
    unobserved = [r for r in heldout if r.instruction.collection.slug != "demotune"]
    per_task = {}
    for task in {r.instruction.task for r in unobserved}:
        ids = [r.id for r in unobserved if r.instruction.task == task]

        def accuracy(variant, ids=ids):
            return np.mean(
                Prediction.objects.filter(variant=variant, revision_id__in=ids).values_list(
                    "correct", flat=True
                )
            )

        per_task[task.slug] = accuracy(calibration.calibrated_variant(model)) - accuracy(base)
    assert set(outcome.per_task) == set(per_task)
    assert outcome.macro.difference == pytest.approx(np.mean(list(per_task.values())))
    assert outcome.macro.ci[0] > 0 and outcome.seeds == ()


def test_on_another_split_the_outcome_is_computed_as_the_variant_would_store_it(synthetic, settings):
    model, base, heldout = synthetic
    calibration.variant_calibrate(model=model)
    stored = calibration_outcome(model)
    # The app's split moves to seed 5: seed 0's phrasings are now another split, where the variant has no
    # predictions, so its outcome there is computed from the base model's option scores.
    settings.SOFTPROMPT_SPLIT_SEED = 5
    computed = calibration_outcome(model, split_seed=0)
    assert computed.macro == stored.macro and computed.per_task == stored.per_task
    assert computed.base_per_task == stored.base_per_task
    # Seed 5's split: the base model has scores only for seed 0's held-out phrasings (the fixture wrote those),
    # so the phrasings judged are those both seeds hold out, unobserved ones only.
    both = [
        r
        for r in heldout
        if is_heldout(r.instruction.stable_key, seed=5) and r.instruction.collection.slug != "demotune"
    ]
    assert both, "the fixture's phrasings should include some that both seeds hold out"
    other = calibration_outcome(model, split_seed=5)
    assert other.macro.phrasings == len(both)


def test_a_phrasing_not_fully_scored_waits_and_a_task_with_mixed_option_counts_is_skipped(synthetic):
    model, base, heldout = synthetic
    first, other = heldout[0], next(r for r in heldout if r.instruction.task != heldout[0].instruction.task)
    Prediction.objects.filter(variant=base, revision=first).order_by("id").first().delete()
    cell = Prediction.objects.filter(variant=base, revision=other).order_by("id").first()
    cell.logliks = [*cell.logliks, -50.0]
    cell.save()
    report = calibration.variant_calibrate(model=model)
    variant = calibration.calibrated_variant(model)
    assert report.waiting[first.instruction.task.slug] == 1
    assert not Prediction.objects.filter(variant=variant, revision=first).exists()
    assert "differ in number of options" in report.skipped[other.instruction.task.slug]
    assert not Prediction.objects.filter(variant=variant, revision__instruction__task=other.instruction.task)


def test_the_calibrated_variant_follows_its_base_and_is_never_scored(synthetic):
    model, base, heldout = synthetic
    task = heldout[0].instruction.task
    tasks.refresh_aggregates(base.id, task.id)
    assert calibration.calibrated_variant(model) is None  # not made behind anyone's back
    calibration.variant_calibrate(model=model)
    variant = calibration.calibrated_variant(model)
    Prediction.objects.filter(variant=variant, revision__instruction__task=task).delete()
    tasks.refresh_aggregates(base.id, task.id)  # the base scored more on the task
    assert Prediction.objects.filter(variant=variant, revision=heldout[0]).exists()
    with pytest.raises(ConfigError, match="not scored"):
        variant.spec()


def test_the_leaderboard_shows_it_in_the_held_out_views_only(synthetic, client):
    model, base, heldout = synthetic
    calibration.variant_calibrate(model=model)
    for task in {r.instruction.task for r in heldout}:
        tasks.refresh_aggregates(base.id, task.id)
    url = reverse("leaderboard", args=["demo"])
    assert "synthetic + batch calibration" in client.get(url, {"set": "heldout"}).content.decode()
    assert "synthetic + batch calibration" in client.get(url, {"set": "heldout_unobserved"}).content.decode()
    assert "synthetic + batch calibration" not in client.get(url, {"set": "all"}).content.decode()


def test_an_admin_adds_it_from_the_model_page(
    synthetic, client, admin_user, alice, django_capture_on_commit_callbacks
):
    model, base, heldout = synthetic
    url = reverse("model_calibrate", args=["synthetic"])
    client.force_login(alice)
    assert client.post(url).status_code == 403
    assert calibration.calibrated_variant(model) is None
    client.force_login(admin_user)
    page = client.get(reverse("model_detail", args=["synthetic"])).content.decode()
    assert "Add batch calibration" in page and "Not added." in page
    with django_capture_on_commit_callbacks(execute=True):  # Celery runs eagerly in tests
        response = client.post(url, follow=True)
    assert "Batch calibration of synthetic queued" in response.content.decode()
    variant = calibration.calibrated_variant(model)
    assert (
        Prediction.objects.filter(variant=variant).count() == Prediction.objects.filter(variant=base).count()
    )
    page = client.get(reverse("model_detail", args=["synthetic"])).content.decode()
    assert f"{len(heldout)} held-out phrasings calibrated" in page and "Calibrate again" in page


def test_the_command_calibrates_and_prints_the_improvement_with_its_interval(synthetic):
    model, _, _ = synthetic
    out = io.StringIO()
    call_command("calibrate", "--model", "synthetic", stdout=out)
    outcome = calibration_outcome(model)
    low, high = outcome.macro.ci
    assert f"Δ {100 * outcome.macro.difference:+.1f} [{100 * low:+.1f}, {100 * high:+.1f}]" in out.getvalue()
    with pytest.raises(CommandError, match="No model named"):
        call_command("calibrate", "--model", "nope")
    Prediction.objects.all().delete()
    with pytest.raises(CommandError, match="Nothing to calibrate"):
        call_command("calibrate", "--model", "synthetic", stdout=io.StringIO())
