"""Soft prompts as a service: a training records what it saw and never a held-out phrasing, its variant is
scored on the held-out phrasings only, enough approvals queue a retraining, and concurrent triggers queue
one training, not two."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import torch
from django.db import connection
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from collection import services as collection_services
from collection.models import Collection, Instruction, Task
from evaluation.ml import softprompt as ml_softprompt
from evaluation.ml.config import AlignConfig
from evaluation.models import LanguageModel, Prediction, ScoringRun, SoftPrompt
from evaluation.robustness import softprompts
from evaluation.runs import scoring
from evaluation.split import is_heldout
from tests.evaluation.splits import heldout_id

SMALL = AlignConfig(num_virtual_tokens=2, steps=3, instances_per_batch=2, paraphrases=1)


@pytest.mark.django_db
def test_the_split_is_stable_and_near_its_fraction():
    flags = [is_heldout(str(i)) for i in range(1, 3001)]
    assert 0.30 < sum(flags) / len(flags) < 0.38
    assert flags == [is_heldout(str(i)) for i in range(1, 3001)]
    assert not any(is_heldout(str(i), fraction=0.0) for i in range(100))


@pytest.mark.django_db
def test_the_split_holds_out_the_same_phrasings_whatever_ids_the_database_hands_out(alice):
    """SQLite and PostgreSQL (or two fresh installs) number rows differently; the split must not care: which
    demo phrasings are held out follows from their benchmark, task and text alone."""
    from collection.demo import load_demo
    from collection.models import Benchmark, phrasing_key

    other = Benchmark.objects.create(slug="other", name="Other")
    task = Task.objects.create(
        benchmark=other,
        slug="t",
        name="T",
        kind="binary",
        answer_format="option_text",
        input_fields=["x"],
        label_space=["yes", "no"],
        max_options=2,
    )
    for n in range(37):  # the demo's phrasings get ids 37 higher than on a fresh database
        collection_services.instruction_create(
            task=task,
            template=f"Filler {n}: {{x}}",
            collection=Collection.objects.get(slug="crowd"),
            author=alice,
        )
    load_demo(generated_per_task=10)
    approved = Instruction.objects.filter(status="approved", task__benchmark__slug="demo").select_related(
        "task", "current_revision"
    )
    texts = {i.id: (i.task.slug, i.current_revision.template) for i in approved}
    heldout = {texts[i.id] for i in approved if is_heldout(i.stable_key)}
    by_content = {
        (slug, text)
        for slug, text in texts.values()
        if is_heldout(phrasing_key(benchmark_slug="demo", task_slug=slug, template=text))
    }
    assert heldout and heldout == by_content
    assert heldout != {texts[pk] for pk in texts if is_heldout(str(pk))}  # what hashing the id would hold out


@pytest.mark.django_db
def test_a_training_records_what_it_saw_and_is_scored_on_held_out_phrasings(
    demo_tiny_t5, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        soft = softprompts.softprompt_queue(model=demo_tiny_t5, config=SMALL)
    soft.refresh_from_db()
    assert soft.status == "succeeded", soft.error
    assert len(soft.curve) == 3 and soft.steps_done == 3
    trained = set(soft.training_revisions.values_list("instruction_id", flat=True))
    heldout = set(soft.heldout_revisions.values_list("instruction_id", flat=True))
    assert trained and heldout and not trained & heldout
    assert not any(heldout_id(i) for i in trained) and all(heldout_id(i) for i in heldout)
    # Every (revision, instance) it saw is a training revision on a training-split instance.
    seen = [pair for pairs in soft.seen.values() for pair in pairs]
    assert seen and {r for r, _ in seen} <= set(soft.training_revisions.values_list("id", flat=True))
    from collection.models import Instance

    assert set(Instance.objects.filter(id__in={i for _, i in seen}).values_list("split", flat=True)) == {
        "train"
    }
    # Its variant was scored (eagerly here) on the held-out phrasings and nothing else.
    runs = ScoringRun.objects.filter(variant=soft.variant)
    scored = set(runs.values_list("revisions__instruction_id", flat=True))
    assert scored == heldout
    assert all(r.status == "succeeded" for r in runs)


@pytest.mark.django_db
def test_a_soft_prompt_keeps_the_split_it_was_queued_with_when_the_setting_changes(
    demo_tiny_t5, alice, carol, settings, django_capture_on_commit_callbacks
):
    approved = set(Instruction.objects.filter(status="approved").values_list("id", flat=True))
    # Queued under the app's split (seed 0), trained after the setting moved to another seed.
    soft = softprompts.softprompt_queue(model=demo_tiny_t5, config=SMALL, enqueue=False)
    settings.SOFTPROMPT_SPLIT_SEED = 7
    assert {i for i in approved if heldout_id(i)} != {i for i in approved if heldout_id(i, seed=0)}
    with django_capture_on_commit_callbacks(execute=True):
        softprompts.softprompt_train_execute(soft_prompt_id=soft.id, task_id="t", device="cpu")
    soft.refresh_from_db()
    assert soft.status == "succeeded", soft.error
    assert soft.split_seed == 0
    heldout = set(soft.heldout_revisions.values_list("instruction_id", flat=True))
    trained = set(soft.training_revisions.values_list("instruction_id", flat=True))
    assert heldout == {i for i in approved if heldout_id(i, seed=0)}
    assert trained and not any(heldout_id(i, seed=0) for i in trained)
    # Its variant is scored on its own held-out phrasings, not on those the setting holds out now (some of
    # which it trained on).
    scored = set(
        ScoringRun.objects.filter(variant=soft.variant).values_list("revisions__instruction_id", flat=True)
    )
    assert scored == heldout
    # It belongs to the old split now: not the model's current soft prompt, so phrasings approved later are
    # not scored on it (those the new split holds out include some it trained on).
    from evaluation.leaderboards import selectors

    assert selectors.current_soft_prompt(demo_tiny_t5) is None
    parity = Task.objects.get(slug="parity")
    for n in range(4):
        instruction = collection_services.instruction_submit(
            task=parity, template=f"Is {{number}} even? Say yes or no. ({n})", author=alice
        )
        with django_capture_on_commit_callbacks(execute=True):
            collection_services.instruction_review(instruction=instruction, reviewer=carol, status="approved")
        assert Prediction.objects.filter(
            variant=scoring.base_variant(demo_tiny_t5), revision__instruction=instruction
        )
        assert not Prediction.objects.filter(variant=soft.variant, revision__instruction=instruction).exists()


@pytest.mark.django_db
def test_a_soft_prompt_queued_on_another_split_holds_out_that_split(
    demo_tiny_t5, django_capture_on_commit_callbacks
):
    approved = set(Instruction.objects.filter(status="approved").values_list("id", flat=True))
    with django_capture_on_commit_callbacks(execute=True):
        soft = softprompts.softprompt_queue(model=demo_tiny_t5, config=SMALL, split_seed=3)
    soft.refresh_from_db()
    assert soft.status == "succeeded", soft.error
    heldout = set(soft.heldout_revisions.values_list("instruction_id", flat=True))
    assert soft.split_seed == 3 and heldout == {i for i in approved if heldout_id(i, seed=3)}
    assert heldout != {i for i in approved if heldout_id(i)}
    scored = set(
        ScoringRun.objects.filter(variant=soft.variant).values_list("revisions__instruction_id", flat=True)
    )
    assert scored == heldout
    # Not the model's current soft prompt: new approvals are scored on the app's split's soft prompt alone.
    from evaluation.leaderboards import selectors

    assert selectors.current_soft_prompt(demo_tiny_t5) is None
    with django_capture_on_commit_callbacks(execute=True):
        app_split = softprompts.softprompt_queue(model=demo_tiny_t5, config=SMALL)
    # Even when the other split's finished last.
    SoftPrompt.objects.filter(id=soft.id).update(finished_at=timezone.now() + timedelta(hours=1))
    assert selectors.current_soft_prompt(demo_tiny_t5).id == app_split.id
    # A larger held-out fraction later never makes it scored on a phrasing it trained on.
    with override_settings(SOFTPROMPT_HELDOUT_FRACTION=1.0, SOFTPROMPT_SPLIT_SEED=3):
        runs = scoring.scoring_runs_for_variant(variant=soft.variant, trigger="manual", enqueue=False)
        planned = {r.instruction_id for run in runs for r in run.revisions.all()}
    trained = set(soft.training_revisions.values_list("instruction_id", flat=True))
    assert trained and not planned & trained
    # A retry keeps its split.
    SoftPrompt.objects.filter(id=soft.id).update(status="failed", error="for the test")
    soft.refresh_from_db()
    assert softprompts.softprompt_retry(soft_prompt=soft).split_seed == 3


@pytest.mark.django_db
@override_settings(SOFTPROMPT_RETRAIN_AFTER=2)
def test_approving_enough_new_phrasings_queues_a_retraining(
    demo_tiny_t5, alice, carol, django_capture_on_commit_callbacks
):
    demo_tiny_t5.align = True
    demo_tiny_t5.save()
    SoftPrompt.objects.create(
        model=demo_tiny_t5,
        trigger="manual",
        config={},
        status="succeeded",
        pool_size=len(softprompts.training_pool(demo_tiny_t5)[0]),
    )
    parity = Task.objects.get(slug="parity")
    written = [f"Number {{number}}: even? ({n})" for n in range(12)]
    training_instructions = []
    for text in written:
        instruction = collection_services.instruction_submit(task=parity, template=text, author=alice)
        if not heldout_id(instruction.id):
            training_instructions.append(instruction)
    assert len(training_instructions) >= 2
    first, second = training_instructions[:2]
    collection_services.instruction_review(instruction=first, reviewer=carol, status="approved")
    assert not SoftPrompt.objects.filter(status="queued").exists()  # grown by 1 of 2
    collection_services.instruction_review(instruction=second, reviewer=carol, status="approved")
    queued = SoftPrompt.objects.filter(model=demo_tiny_t5, status="queued")
    assert queued.count() == 1 and queued.get().trigger == "approval"


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_concurrent_triggers_queue_one_training(tiny_models):
    model = LanguageModel.objects.create(name="m", source=str(tiny_models["t5"]), family="seq2seq")
    barrier = threading.Barrier(2)
    results, errors = [], []

    def trigger():
        try:
            barrier.wait(timeout=10)
            results.append(softprompts.softprompt_queue(model=model, config=SMALL, enqueue=False).id)
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=trigger) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(results) == 2 and results[0] == results[1]
    assert SoftPrompt.objects.filter(model=model).count() == 1


@pytest.mark.django_db
def test_nothing_to_train_on_is_a_failed_training_with_a_reason(
    tiny_models, django_capture_on_commit_callbacks
):
    model = LanguageModel.objects.create(name="m", source=str(tiny_models["t5"]), family="seq2seq")
    with django_capture_on_commit_callbacks(execute=True):
        soft = softprompts.softprompt_queue(model=model, config=SMALL)
    soft.refresh_from_db()
    assert soft.status == "failed" and "Nothing to train on" in soft.error
    retried = softprompts.softprompt_retry(soft_prompt=soft)
    assert retried.id != soft.id and retried.status == "queued"


@pytest.mark.django_db
def test_out_of_memory_in_training_fails_it_with_the_settings_to_lower_and_a_retry(
    demo_tiny_t5, carol, client, monkeypatch, django_capture_on_commit_callbacks
):
    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 4.00 GiB")

    monkeypatch.setattr(ml_softprompt, "_losses", out_of_memory)
    with django_capture_on_commit_callbacks(execute=True):
        soft = softprompts.softprompt_queue(model=demo_tiny_t5, config=SMALL)
    soft.refresh_from_db()
    assert soft.status == "failed" and not soft.artifact and soft.variant is None
    assert soft.error.startswith(
        "Out of memory on cpu at step 1: a micro-batch of 2 instance(s) x 2 phrasing(s) (4 prompts) does not fit. "
        "Lower instances_per_batch or paraphrases"
    )
    client.force_login(carol)
    page = client.get(reverse("softprompt_detail", args=[soft.id])).content.decode()
    assert "Out of memory on cpu at step 1" in page and ">Retry</button>" in page
    monkeypatch.undo()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("softprompt_retry", args=[soft.id]))
    retried = SoftPrompt.objects.exclude(id=soft.id).get(model=demo_tiny_t5)
    assert retried.status == "succeeded" and retried.config == soft.config


@pytest.mark.django_db
def test_the_task_grid_and_model_page_show_the_soft_prompt_on_its_held_out_phrasings(
    demo_tiny_t5, client, django_capture_on_commit_callbacks
):
    from evaluation.leaderboards import selectors
    from evaluation.models import PhrasingResult

    # A task with held-out phrasings (which ones are held out depends on their ids, so on the test order).
    approved = Instruction.objects.filter(status="approved", task__benchmark__slug="demo").select_related(
        "task"
    )
    task = next(i.task for i in approved.order_by("task__slug", "id") if heldout_id(i.id))
    base = scoring.base_variant(demo_tiny_t5)
    with django_capture_on_commit_callbacks(execute=True):
        scoring.variant_score_now(variant=base)
    order_before = [p["revision"].id for p in selectors.task_grid(task=task, variants=[base]).phrasings]
    with django_capture_on_commit_callbacks(execute=True):
        soft = softprompts.softprompt_queue(model=demo_tiny_t5, config=SMALL)
    soft.refresh_from_db()
    variants = selectors.task_variants(task)
    assert variants == [base, soft.variant]

    grid = selectors.task_grid(task=task, variants=variants)
    # The soft prompt's cells are exactly its held-out phrasings; the order (by the base model) is unchanged.
    assert [p["revision"].id for p in grid.phrasings] == order_before
    heldout = set(soft.heldout_revisions.filter(instruction__task=task).values_list("id", flat=True))
    filled = {p["revision"].id for p in grid.phrasings if p["cells"][1]["text"] != "–"}
    assert heldout and filled == heldout
    accuracy = PhrasingResult.objects.get(variant=soft.variant, revision_id=min(heldout)).accuracy
    row = next(p for p in grid.phrasings if p["revision"].id == min(heldout))
    assert row["cells"][1]["text"] == f"{100 * accuracy:.0f}"

    page = client.get(reverse("task_results", args=["demo", task.slug])).content.decode()
    assert f"tiny-t5 + soft prompt #{soft.id}" in page and "held-out phrasings only" in page
    model_page = client.get(reverse("model_detail", args=["tiny-t5"])).content.decode()
    assert "(held-out phrasings)" in model_page

    # The task page's mean accuracy per phrasing is over the models' own figures: the soft prompt's, on
    # held-out phrasings alone, is not averaged in (it moved those phrasings' means, and not the others').
    revision = soft.heldout_revisions.get(id=min(heldout))
    base_accuracy = PhrasingResult.objects.get(variant=base, revision=revision).accuracy
    PhrasingResult.objects.filter(variant=soft.variant).update(accuracy=1.0 if base_accuracy < 0.5 else 0.0)
    scores = selectors.task_phrasing_scores(task)[revision.instruction_id]
    assert (scores["mean"], scores["models"]) == (pytest.approx(base_accuracy), 1)


def _scored_and_trained(model, capture):
    """The base model scored on the demo, then a small soft prompt trained (and scored on its held-out set)."""
    base = scoring.base_variant(model)
    with capture(execute=True):
        scoring.variant_score_now(variant=base)
    with capture(execute=True):
        soft = softprompts.softprompt_queue(model=model, config=SMALL)
    soft.refresh_from_db()
    return base, soft


@pytest.mark.django_db
def test_the_soft_prompt_page_shows_base_vs_soft_prompt_on_its_held_out_unobserved_phrasings(
    demo_tiny_t5, client, django_capture_on_commit_callbacks
):
    from evaluation.robustness.outcome import soft_prompt_outcome
    from evaluation.templatetags.figures import signed

    base, soft = _scored_and_trained(demo_tiny_t5, django_capture_on_commit_callbacks)
    outcome = soft_prompt_outcome(soft)
    assert outcome is not None and outcome.per_task
    # Each task's base figure is the base model's accuracy on exactly those cells.
    for task, accuracy in outcome.base_per_task.items():
        heldout = soft.heldout_revisions.filter(instruction__task__slug=task).exclude(
            instruction__collection__slug="demotune"
        )
        rows = Prediction.objects.filter(variant=base, revision__in=heldout)
        assert accuracy == pytest.approx(sum(rows.values_list("correct", flat=True)) / rows.count())
    page = client.get(reverse("softprompt_detail", args=[soft.id])).content.decode()
    assert "Outcome on its held-out unobserved phrasings" in page
    low, high = outcome.macro.ci
    # The figure component: the signed difference in points, a space, the interval's signed bounds.
    macro = f'{signed(outcome.macro.difference)}</span> <span class="ci">[{signed(low)[:-3]}, {signed(high)[:-3]}]'
    assert "macro average" in page and macro in page


@pytest.mark.django_db
def test_the_outcome_is_on_current_texts_and_the_evaluation_sample(
    demo_tiny_t5, django_capture_on_commit_callbacks
):
    """A sample made smaller keeps the predictions outside it, and an edited phrasing keeps its old text's:
    the outcome counts neither, as no other figure does (they used to move the soft prompt page's base
    accuracy and improvement, and reproduce_study's Table 2)."""
    from collection.selectors import task_eval_sample_ids
    from evaluation.robustness.outcome import soft_prompt_outcome

    base, soft = _scored_and_trained(demo_tiny_t5, django_capture_on_commit_callbacks)
    task_slug = min(soft_prompt_outcome(soft).per_task)
    task = Task.objects.get(benchmark__slug="demo", slug=task_slug)

    def heldout_phrasings():
        return (
            Instruction.objects.filter(
                task=task, status="approved", revisions__in=soft.heldout_revisions.all()
            )
            .exclude(collection__slug="demotune")
            .exclude(collection__kind=Collection.Kind.BENCHMARK_DEFAULT)
            .distinct()
        )

    def base_accuracy_on_current_texts_in_the_sample() -> float:
        rows = Prediction.objects.filter(
            variant=base,
            revision__in=heldout_phrasings().values("current_revision"),
            instance_id__in=task_eval_sample_ids(task),
        )
        return sum(rows.values_list("correct", flat=True)) / rows.count()

    # The sample shrinks from 4 instances to 2; the predictions on the other 2 stay: all wrong, those in the
    # sample all right.
    task.eval_sample_size = 2
    task.save(update_fields=["eval_sample_size"])
    sample = task_eval_sample_ids(task)
    scored = Prediction.objects.filter(
        variant=base, revision__in=heldout_phrasings().values("current_revision")
    )
    assert scored.count() == 2 * scored.filter(instance_id__in=sample).count() > 0
    scored.exclude(instance_id__in=sample).update(correct=False)
    scored.filter(instance_id__in=sample).update(correct=True)
    assert soft_prompt_outcome(soft).base_per_task[task_slug] == pytest.approx(1.0)

    # A held-out phrasing's text is edited; the base model and the current soft prompt score the new text,
    # which the base model gets wrong.
    edited = heldout_phrasings().select_related("current_revision").first()
    old = edited.current_revision
    collection_services.instruction_revise(instruction=edited, template=old.template + " Be brief.")
    with django_capture_on_commit_callbacks(execute=True):
        scoring.variant_score_now(variant=base)
        scoring.variant_score_now(variant=soft.variant)
    edited.refresh_from_db()
    assert edited.current_revision_id != old.id
    assert Prediction.objects.filter(variant=soft.variant, revision=edited.current_revision).exists()
    Prediction.objects.filter(variant=base, revision=edited.current_revision).update(correct=False)
    outcome = soft_prompt_outcome(soft)
    assert outcome.base_per_task[task_slug] == pytest.approx(base_accuracy_on_current_texts_in_the_sample())
    assert outcome.base_per_task[task_slug] < 1.0  # the new text's wrong answers count, the old text's not


@pytest.mark.django_db
def test_an_import_that_rewrites_a_held_out_phrasing_queues_it_on_the_current_soft_prompt(
    demo_tiny_t5, django_capture_on_commit_callbacks
):
    # As an approval does: only the base model used to get the new text, so the phrasing left the soft
    # prompt's outcome unscored.
    base, soft = _scored_and_trained(demo_tiny_t5, django_capture_on_commit_callbacks)
    phrasing = (
        Instruction.objects.filter(status="approved", revisions__in=soft.heldout_revisions.all())
        .select_related("current_revision")
        .first()
    )
    collection_services.instruction_revise(
        instruction=phrasing, template=phrasing.current_revision.template + " Go."
    )
    phrasing.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        runs = scoring.scoring_for_active_models(trigger="import")
    assert {run.variant_id for run in runs} == {base.id, soft.variant_id}
    for variant in (base, soft.variant):
        assert Prediction.objects.filter(variant=variant, revision=phrasing.current_revision).exists()


def test_an_admin_chooses_the_method_on_the_model_page(client, admin_user, demo_tiny_t5, settings):
    client.force_login(admin_user)
    page = client.get(reverse("model_detail", args=["tiny-t5"])).content.decode()
    assert "prompt consistency (swarm distillation, no labels)" in page
    refused = client.post(reverse("model_align", args=["tiny-t5"]), {"method": "magic"}, follow=True)
    assert "Unknown method" in refused.content.decode() and not SoftPrompt.objects.exists()
    client.post(reverse("model_align", args=["tiny-t5"]), {"method": "consistency"})
    soft = SoftPrompt.objects.get()
    assert soft.config["objective"] == "consistency"
    assert AlignConfig(**soft.config).ablation == "consistency"
    # Consistency stops early on its unsupervised criterion, with the setting's patience; the others never do.
    assert soft.config["patience"] == settings.SOFTPROMPT_CONSISTENCY_PATIENCE > 0
    SoftPrompt.objects.update(status="cancelled")
    client.post(reverse("model_align", args=["tiny-t5"]), {"method": "align"})
    assert SoftPrompt.objects.order_by("-id").first().config["patience"] == 0


@pytest.mark.django_db
def test_consistency_s_early_stopping_is_recorded_on_the_row_and_its_page(
    demo_tiny_t5, client, django_capture_on_commit_callbacks
):
    config = AlignConfig(
        num_virtual_tokens=2,
        steps=6,
        instances_per_batch=2,
        paraphrases=1,
        objective="consistency",
        patience=1,
        eval_every=2,
        validation_instances=2,
    )
    with django_capture_on_commit_callbacks(execute=True):
        soft = softprompts.softprompt_queue(model=demo_tiny_t5, config=config)
    soft.refresh_from_db()
    assert soft.status == "succeeded", soft.error
    assert soft.config["patience"] == 1 and soft.config["eval_every"] == 2
    checks = [r for r in soft.curve if "val_kappa" in r]
    assert checks and "kept_step" in soft.curve[-1]
    # The tiny model answers alike under every phrasing (kappa 0 at every check): the first check after
    # step 0 is no better, so it stops there and keeps the initial prompt.
    assert soft.steps_done == 2 and soft.curve[-1]["kept_step"] == 0
    page = client.get(reverse("softprompt_detail", args=[soft.id])).content.decode()
    assert "Early stopping on agreement between phrasings" in page
    assert "stopped at step 2 of 6" in page and "step 0, the initial one" in page


@pytest.mark.django_db
def test_a_soft_prompt_trained_under_the_id_hashed_split_says_so_and_is_never_scored_on_what_it_trained_on(
    demo_tiny_t5, carol, client, django_capture_on_commit_callbacks
):
    """A database upgraded from before the split hashed stable keys keeps soft prompts trained under the id
    hash: some of the phrasings they trained on are held out now (the upgrade check found 14 of 64)."""
    from evaluation import split

    with django_capture_on_commit_callbacks(execute=True):
        soft = softprompts.softprompt_queue(model=demo_tiny_t5, config=SMALL)
    soft.refresh_from_db()
    client.force_login(carol)
    assert split.trained_on_heldout(soft) == []
    assert 'id="older-split"' not in client.get(reverse("softprompt_detail", args=[soft.id])).content.decode()
    # As the id hash left it: a phrasing held out under the stable-key hash among those it trained on.
    held = next(r for r in soft.heldout_revisions.all())
    soft.training_revisions.add(held)
    assert split.trained_on_heldout(soft) == [held.instruction_id]
    assert not split.scored_by(soft.variant)(held.instruction)
    page = client.get(reverse("softprompt_detail", args=[soft.id])).content.decode()
    assert 'id="older-split"' in page and "1 of the phrasings it trained on are held out" in page
