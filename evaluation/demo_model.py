"""The offline demo model: a small T5 instruction-tuned from scratch, seeded, on the demo benchmark's
training split rendered with the *observed* (DemoTune) phrasings only. So, as in the study, the crowd
phrasings are unobserved for it: it has never seen their wording.

`demo_study_ensure` builds it once (cached under VAR_DIR by a hash of its recipe), makes sure every demo task
has MIN_HELDOUT_UNOBSERVED held-out unobserved phrasings (loading more of the phrasing generator's when a
task falls short), registers the model, scores every approved phrasing, trains its soft prompt with each
ablation and each of SEEDS and scores those on the held-out phrasings.
Every step skips what is already done, so running it again is cheap. `reproduce_study` prints the tables.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import torch
from django.conf import settings

from collection import events, templating
from collection.answers import option_texts
from collection.demo import (
    BENCHMARK_SLUG,
    GENERATED_PER_TASK,
    TASKS,
    TUNING_COLLECTION,
    generated_phrasings_load,
)
from collection.importers.base import ImportReport
from collection.models import Benchmark, Collection, Instance, Instruction, Task
from core.jobs import JobStatus
from evaluation.ml.build import build_model, train_tokenizer
from evaluation.ml.config import AlignConfig, ModelSpec
from evaluation.ml.loading import load
from evaluation.ml.pretrain import instruction_tune
from evaluation.models import LanguageModel, RunTrigger, SoftPrompt
from evaluation.robustness import calibration, softprompts
from evaluation.runs import registry, scoring
from evaluation.split import app_seed, is_heldout

DEMO_MODEL = "demo-t5"
# Change anything here and the model is rebuilt (the cache directory is named by the recipe's hash).
# generated_per_task: fresh instances per task from the demo's own generators (seeded apart from the stored
# splits), beyond its 300 stored training instances; split_digits False keeps whole numbers as tokens. Measured
# on observed phrasings: with the 300 stored instances and digit tokens, parity reached 65% (observed-vs-
# unobserved gap 9.2 pp [-1.6, 15.8], CI across zero); with this recipe parity is 100% and the gap 14.3 pp
# [5.2, 22.6]. Larger-number and odd-one-out stay near chance at this size in every recipe we tried.
RECIPE = {
    "size": "demo",
    "vocab_size": 800,
    "steps": 2000,
    "batch_size": 32,
    "learning_rate": 1e-3,
    "seed": 0,  # the build seed: DEMO_MODEL_SEED replaces it (recipe())
    "generated_per_task": 3000,
    "split_digits": False,
    # CPU threads while building and training. Torch's CPU kernels split sums by thread, so the same seed
    # gives other weights under another thread count (measured: 1 and 2 threads, different model files; the
    # same count twice, identical). One thread makes the demo's numbers the same on any core count.
    "threads": 1,
}
# The soft-prompt ablations the study table compares: CE only (plain prompt tuning), +KL, +rep, both; and
# the consistency baseline (swarm distillation: agreement between phrasings, no labels).
ABLATIONS = {
    "ce": {"lambda_kl": 0.0, "lambda_rep": 0.0},
    "ce+kl": {"lambda_kl": 1.0, "lambda_rep": 0.0},
    "ce+rep": {"lambda_kl": 0.0, "lambda_rep": 1.0},
    "ce+kl+rep": {"lambda_kl": 1.0, "lambda_rep": 1.0},
    # With its unsupervised early stopping (agreement between phrasings on unlabeled held-out training
    # instances), as the model page trains it: without it, the prompts drifted towards one answer.
    "consistency": {"lambda_kl": 0.0, "lambda_rep": 0.0, "objective": "consistency", "patience": 3},
}
# Each ablation is trained once per seed; the improvement is pooled over them (evaluation/robustness/outcome.py).
SEEDS = (0, 1, 2)
# Held-out unobserved phrasings per task that the held-out figures rest on (the split is a hash of the
# phrasing's stable key, so how many of a task's phrasings it holds out varies; more are loaded until there are
# this many).
MIN_HELDOUT_UNOBSERVED = 20
SOFT_PROMPT = {
    "num_virtual_tokens": 8,
    "steps": 150,
    "learning_rate": 0.05,
    "instances_per_batch": 8,
    "paraphrases": 3,
}

Say = Callable[[str], None]


def recipe() -> dict:
    """RECIPE under the build seed DEMO_MODEL_SEED (default 0): the README's tables are measured over several
    build seeds, since one model's figures are one draw of what this recipe gives."""
    return {**RECIPE, "seed": settings.DEMO_MODEL_SEED}


def recipe_path() -> Path:
    digest = hashlib.sha256(json.dumps(recipe(), sort_keys=True).encode()).hexdigest()[:12]
    return Path(settings.VAR_DIR) / "demo-model" / digest


def _observed_pairs() -> tuple[list[tuple[str, str]], list[str]]:
    """(prompt, answer) pairs under the observed phrasings, from the training split and from freshly generated
    instances of the same tasks, and the tokenizer's corpus."""
    import random

    phrasings = list(
        Instruction.objects.filter(
            task__benchmark__slug=BENCHMARK_SLUG, collection__slug=TUNING_COLLECTION, status="approved"
        ).select_related("current_revision", "task")
    )
    pairs, corpus = [], []
    for phrasing in phrasings:
        instances = Instance.objects.filter(task=phrasing.task, split=Instance.Split.TRAIN).order_by("id")
        for instance in instances:
            prompt = templating.render(phrasing.template, instance.inputs, instance.options)
            answers = option_texts(phrasing.task, phrasing.current_revision, instance)
            pairs.append((prompt, answers[instance.gold]))
            corpus.append(prompt + " " + " ".join(answers))
    specs = {spec.slug: spec for spec in TASKS}
    for number, phrasing in enumerate(phrasings):
        spec, task = specs[phrasing.task.slug], phrasing.task
        rng = random.Random(f"demo-model:{recipe()['seed']}:{number}")
        for _ in range(recipe()["generated_per_task"]):
            inputs, options, gold = spec.make(rng)
            prompt = templating.render(phrasing.template, inputs, options)
            letters = task.answer_format == task.AnswerFormat.LETTER
            pairs.append((prompt, templating.LETTERS[gold] if letters else options[gold]))
    return pairs, corpus


def demo_model_build(say: Say = print) -> Path:
    """Build and instruction-tune the demo model, or return the cached one."""
    out, spec = recipe_path(), recipe()
    if (out / "model.safetensors").is_file():
        return out
    pairs, corpus = _observed_pairs()
    if not pairs:
        raise RuntimeError("The demo benchmark is not loaded; run `manage.py load_demo` first.")
    say(f"Training the demo model from scratch on {len(pairs):,} observed (prompt, answer) pairs...")
    building = out.with_name(out.name + f".building-{uuid.uuid4().hex[:6]}")
    tokenizer = train_tokenizer(
        corpus, building, vocab_size=spec["vocab_size"], add_eos=True, split_digits=spec["split_digits"]
    )
    build_model("t5", tokenizer, building, size=spec["size"], seed=spec["seed"])
    loaded = load(ModelSpec(source=str(building), family="seq2seq", dtype="float32"), device="cpu")

    def progress(step: int, loss: float) -> None:
        if step % 200 == 0 or step == spec["steps"]:
            say(f"  step {step}/{spec['steps']}: loss {loss:.4f}")

    losses = instruction_tune(
        loaded,
        pairs,
        steps=spec["steps"],
        batch_size=spec["batch_size"],
        learning_rate=spec["learning_rate"],
        seed=spec["seed"],
        on_step=progress,
    )
    loaded.model.save_pretrained(str(building))
    (building / "recipe.json").write_text(
        json.dumps({"recipe": spec, "losses": losses[-50:]}), encoding="utf-8"
    )
    try:
        building.rename(out)  # atomic: a half-built model is never taken for a cached one
    except OSError:
        if not (out / "model.safetensors").is_file():
            raise
        # Another process (the worker, reproduce_study) built the same recipe first: theirs is the same model.
        shutil.rmtree(building, ignore_errors=True)
    return out


def _heldout_unobserved(task: Task, split_seed: int | None = None) -> int:
    phrasings = Instruction.objects.filter(task=task, status=Instruction.Status.APPROVED).exclude(
        collection__slug=TUNING_COLLECTION
    )
    return sum(is_heldout(key, seed=split_seed) for key in phrasings.values_list("stable_key", flat=True))


def heldout_phrasings_ensure(say: Say = print, split_seeds: tuple[int, ...] | None = None) -> None:
    """Load more generated phrasings into any demo task with fewer than MIN_HELDOUT_UNOBSERVED held out, under
    each of the split seeds (default: SOFTPROMPT_SPLIT_SEED's alone)."""
    split_seeds = split_seeds or (app_seed(),)
    report = ImportReport()
    for task in Task.objects.filter(benchmark__slug=BENCHMARK_SLUG, parent=None).order_by("id"):
        loaded = task.instructions.filter(collection__slug="generated").count()
        count = max(loaded, GENERATED_PER_TASK)
        while min(_heldout_unobserved(task, seed) for seed in split_seeds) < MIN_HELDOUT_UNOBSERVED:
            count += 4
            generated_phrasings_load(task=task, count=count, report=report)
        if count > max(loaded, GENERATED_PER_TASK):
            say(f"{task.slug}: {count} generated phrasings, so that {MIN_HELDOUT_UNOBSERVED} are held out.")
    if report.lines():
        events.phrasings_imported.send(sender=heldout_phrasings_ensure)


def demo_study_ensure(say: Say = print, split_seeds: tuple[int, ...] | None = None) -> LanguageModel:
    """Everything the study tables need, computed in the foreground; steps already done are skipped. The soft
    prompts are trained on each of the split seeds (default: SOFTPROMPT_SPLIT_SEED's alone), so that a finding
    can be checked over several choices of held-out phrasings. Runs on recipe()["threads"] CPU threads."""
    with _threads(recipe()["threads"]):
        return _demo_study_ensure(say, split_seeds or (app_seed(),))


@contextlib.contextmanager
def _threads(count: int):
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _demo_study_ensure(say: Say, split_seeds: tuple[int, ...]) -> LanguageModel:
    path = demo_model_build(say)
    heldout_phrasings_ensure(say, split_seeds)
    model = LanguageModel.objects.filter(name=DEMO_MODEL).first()
    if model is None:
        model = registry.language_model_register(
            name=DEMO_MODEL,
            source=str(path),
            family="seq2seq",
            dtype="float32",
            batch_size=32,
            tuned_on=[Collection.objects.get(slug=TUNING_COLLECTION)],
            score=False,
            check_now=True,  # the demo runs in the foreground, where its model is, with no worker yet
            description="Offline demo: a small T5 instruction-tuned from scratch on the demo's observed phrasings.",
        )
    if not model.benchmarks.exists():
        # Trained on the demo tasks only: its scores elsewhere (MMLU, BIG-bench) would mean nothing and cost
        # hours, so it scores the demo benchmark alone (also for a demo model registered before limits).
        model.benchmarks.set([Benchmark.objects.get(slug=BENCHMARK_SLUG)])
    if model.source != str(path):
        # A new recipe is a different model: its old predictions and soft prompts would be wrong for it.
        say(f"The demo recipe changed; replacing {DEMO_MODEL} and its results.")
        model.delete()
        return _demo_study_ensure(say, split_seeds)
    scoring.variant_score_now(variant=scoring.base_variant(model), say=say)
    # The inference-only baseline: the base model's held-out scores, batch-calibrated (no model loaded).
    calibration.variant_calibrate(model=model)
    for split_seed in split_seeds:
        for name, lambdas in ABLATIONS.items():
            for seed in SEEDS:
                config = AlignConfig(**SOFT_PROMPT, **lambdas, seed=seed)
                _soft_prompt_ensure(model, name, config, split_seed, say)
    return model


def _soft_prompt_ensure(
    model: LanguageModel, name: str, config: AlignConfig, split_seed: int, say: Say
) -> None:
    """Train and score the soft prompt of this config on this split, unless one succeeded already."""
    # One trained on a smaller pool (before more phrasings were approved) would be judged on fewer held-out
    # phrasings than the others: train again.
    pool = len(softprompts.training_pool(model, split_seed)[0])
    # Compared as configs, not as stored JSON: one stored before a setting existed has that setting's default.
    trained = SoftPrompt.objects.filter(
        model=model, status=JobStatus.SUCCEEDED, pool_size=pool, split_seed=split_seed
    ).order_by("id")
    done = next((s for s in trained if AlignConfig(**s.config) == config), None)
    if done is None:
        say(
            f"Training the {name} soft prompt, seed {config.seed}, split seed {split_seed} "
            f"({config.steps} steps)..."
        )
        soft = softprompts.softprompt_queue(
            model=model, trigger=RunTrigger.CLI, config=config, enqueue=False, split_seed=split_seed
        )
        soft = softprompts.softprompt_train_execute(
            soft_prompt_id=soft.id, task_id=f"demo-{uuid.uuid4()}", device="cpu", enqueue_scoring=False
        )
        if soft is None or soft.status != JobStatus.SUCCEEDED:
            raise RuntimeError(f"Soft prompt training failed: {soft.error if soft else 'not claimed'}")
        done = soft
    scoring.variant_score_now(variant=done.variant, say=say)
