"""The offline demo model: a small T5 instruction-tuned from scratch, seeded, on the demo benchmark's
training split rendered with the *observed* (DemoTune) phrasings only. So, as in the study, the crowd
phrasings are unobserved for it: it has never seen their wording.

`demo_study_ensure` builds it once (cached under VAR_DIR by a hash of its recipe), registers it, scores every
approved phrasing, trains its soft prompt with each ablation and scores those on the held-out phrasings.
Every step skips what is already done, so running it again is cheap. `reproduce_study` prints the tables.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from pathlib import Path

from django.conf import settings

from collection import templating
from collection.answers import option_texts
from collection.demo import BENCHMARK_SLUG, TASKS, TUNING_COLLECTION
from collection.models import Collection, Instance, Instruction
from core.jobs import JobStatus
from evaluation import registry, scoring, softprompts
from evaluation.ml.build import build_model, train_tokenizer
from evaluation.ml.config import AlignConfig, ModelSpec
from evaluation.ml.loading import load
from evaluation.ml.pretrain import instruction_tune
from evaluation.models import LanguageModel, RunTrigger, SoftPrompt

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
    "seed": 0,
    "generated_per_task": 3000,
    "split_digits": False,
}
# The soft-prompt ablations the study table compares: CE only (plain prompt tuning), +KL, +rep, both.
ABLATIONS = {
    "ce": {"lambda_kl": 0.0, "lambda_rep": 0.0},
    "ce+kl": {"lambda_kl": 1.0, "lambda_rep": 0.0},
    "ce+rep": {"lambda_kl": 0.0, "lambda_rep": 1.0},
    "ce+kl+rep": {"lambda_kl": 1.0, "lambda_rep": 1.0},
}
SOFT_PROMPT = {
    "num_virtual_tokens": 8,
    "steps": 150,
    "learning_rate": 0.05,
    "instances_per_batch": 8,
    "paraphrases": 3,
}

Say = Callable[[str], None]


def recipe_path() -> Path:
    digest = hashlib.sha256(json.dumps(RECIPE, sort_keys=True).encode()).hexdigest()[:12]
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
        rng = random.Random(f"demo-model:{RECIPE['seed']}:{number}")
        for _ in range(RECIPE["generated_per_task"]):
            inputs, options, gold = spec.make(rng)
            prompt = templating.render(phrasing.template, inputs, options)
            letters = task.answer_format == task.AnswerFormat.LETTER
            pairs.append((prompt, templating.LETTERS[gold] if letters else options[gold]))
    return pairs, corpus


def demo_model_build(say: Say = print) -> Path:
    """Build and instruction-tune the demo model, or return the cached one."""
    out = recipe_path()
    if (out / "model.safetensors").is_file():
        return out
    pairs, corpus = _observed_pairs()
    if not pairs:
        raise RuntimeError("The demo benchmark is not loaded; run `manage.py load_demo` first.")
    say(f"Training the demo model from scratch on {len(pairs):,} observed (prompt, answer) pairs...")
    building = out.with_name(out.name + f".building-{uuid.uuid4().hex[:6]}")
    tokenizer = train_tokenizer(
        corpus, building, vocab_size=RECIPE["vocab_size"], add_eos=True, split_digits=RECIPE["split_digits"]
    )
    build_model("t5", tokenizer, building, size=RECIPE["size"], seed=RECIPE["seed"])
    loaded = load(ModelSpec(source=str(building), family="seq2seq", dtype="float32"), device="cpu")

    def progress(step: int, loss: float) -> None:
        if step % 200 == 0 or step == RECIPE["steps"]:
            say(f"  step {step}/{RECIPE['steps']}: loss {loss:.4f}")

    losses = instruction_tune(
        loaded,
        pairs,
        steps=RECIPE["steps"],
        batch_size=RECIPE["batch_size"],
        learning_rate=RECIPE["learning_rate"],
        seed=RECIPE["seed"],
        on_step=progress,
    )
    loaded.model.save_pretrained(str(building))
    (building / "recipe.json").write_text(json.dumps({"recipe": RECIPE, "losses": losses[-50:]}))
    building.rename(out)  # atomic: a half-built model is never taken for a cached one
    return out


def demo_study_ensure(say: Say = print) -> LanguageModel:
    """Everything the study tables need, computed in the foreground; steps already done are skipped."""
    path = demo_model_build(say)
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
    elif model.source != str(path):
        # A new recipe is a different model: its old predictions and soft prompts would be wrong for it.
        say(f"The demo recipe changed; replacing {DEMO_MODEL} and its results.")
        model.delete()
        return demo_study_ensure(say)
    scoring.variant_score_now(variant=scoring.base_variant(model), say=say)
    for name, lambdas in ABLATIONS.items():
        config = AlignConfig(**SOFT_PROMPT, **lambdas)
        done = SoftPrompt.objects.filter(
            model=model, status=JobStatus.SUCCEEDED, config=_asdict(config)
        ).first()
        if done is None:
            say(f"Training the {name} soft prompt ({config.steps} steps)...")
            soft = softprompts.softprompt_queue(
                model=model, trigger=RunTrigger.CLI, config=config, enqueue=False
            )
            soft = softprompts.softprompt_train_execute(
                soft_prompt_id=soft.id, task_id=f"demo-{uuid.uuid4()}", device="cpu", enqueue_scoring=False
            )
            if soft is None or soft.status != JobStatus.SUCCEEDED:
                raise RuntimeError(f"Soft prompt training failed: {soft.error if soft else 'not claimed'}")
            done = soft
        scoring.variant_score_now(variant=done.variant, say=say)
    return model


def _asdict(config) -> dict:
    from dataclasses import asdict

    return asdict(config)
