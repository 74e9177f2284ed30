"""Soft-prompt training on tiny models: the loss goes down, the artifact is PEFT's and reloads to identical
scores, the fast paths equal the naive reference with a soft prompt in front, and configs validate."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch

from evaluation.ml import softprompt
from evaluation.ml.config import AlignConfig, ConfigError, ModelSpec, ScoreConfig
from evaluation.ml.loading import load
from evaluation.ml.reference import score_naive
from evaluation.ml.scoring import ScoringItem, encode_items, score

FAMILY = {"t5": "seq2seq", "gpt2": "causal", "llama": "causal"}
NUMBERS = [str(n) for n in range(10, 42)]
PHRASINGS = {
    1: ("Is the number", " {n} even? Answer:"),
    2: ("Question:", " is {n} an even number?\nAnswer:"),
    3: ("Decide whether", " {n} is even or odd.\nThe answer is"),
    4: ("Even or odd:", " {n}\nAnswer:"),
}


def task(options=("yes", "no")) -> softprompt.TrainingTask:
    def item(phrasing: int, index: int) -> ScoringItem:
        shared, rest = PHRASINGS[phrasing]
        return ScoringItem(shared, rest.format(n=NUMBERS[index]), options)

    return softprompt.TrainingTask(
        name="parity",
        phrasings=(1, 2, 3),
        anchors=(1,),
        instance_count=len(NUMBERS),
        item=item,
        gold=lambda index: int(NUMBERS[index]) % 2,
    )


def scores(loaded, items):
    out = {}
    for batch in score(loaded, items, ScoreConfig(batch_size=3, device="cpu")):
        out.update(batch)
    return [out[i] for i in range(len(items))]


def max_diff(a, b) -> float:
    return max(
        abs(x - y) for p, q in zip(a, b, strict=True) for x, y in zip(p.logliks, q.logliks, strict=True)
    )


@pytest.mark.parametrize("arch", ["t5", "gpt2", "llama"])
def test_training_lowers_the_loss_and_the_artifact_reloads_to_identical_scores(tiny_models, tmp_path, arch):
    spec = ModelSpec(source=str(tiny_models[arch]), family=FAMILY[arch])
    loaded = load(spec, device="cpu")
    config = AlignConfig(
        num_virtual_tokens=4, steps=30, learning_rate=0.05, instances_per_batch=4, paraphrases=2
    )
    peft_model, result = softprompt.train(loaded, [task()], config)
    first = sum(r["loss"] for r in result.curve[:5]) / 5
    last = sum(r["loss"] for r in result.curve[-5:]) / 5
    assert last < first, (first, last)
    assert all(r["kl"] >= 0 and 0 <= r["rep"] <= 2 for r in result.curve)
    # Phrasing 4 is held out: it must never have been trained on.
    assert {pair[0] for pair in result.seen["parity"]} <= {1, 2, 3}
    out = softprompt.save(peft_model, result, tmp_path / "soft")
    assert (out / "adapter_config.json").is_file() and (out / "adapter_model.safetensors").is_file()
    record = json.loads((out / "training.json").read_text(encoding="utf-8"))
    assert record["config"]["num_virtual_tokens"] == 4 and len(record["curve"]) == 30

    # Reloaded through the scorer: the fast paths equal the naive reference with the soft prompt in front,
    # and differ from the model without it.
    with_prompt = load(ModelSpec(source=spec.source, family=spec.family, soft_prompt=str(out)), device="cpu")
    items = [task().item(p, i) for p in (1, 4) for i in range(6)]
    fast = scores(with_prompt, items)
    assert max_diff(fast, score_naive(with_prompt, items)) <= 1e-4
    assert max_diff(fast, scores(load(spec, device="cpu"), items)) > 1e-3
    # And the trained embeddings are exactly what training left in the PEFT model.
    trained = peft_model.prompt_encoder["default"].embedding.weight.detach()
    assert torch.equal(with_prompt.soft_prompt, trained)


@pytest.mark.parametrize("arch", ["t5", "gpt2"])
def test_peft_loads_the_artifact_and_agrees_with_our_scorer(tiny_models, tmp_path, arch):
    from peft import PeftModel

    spec = ModelSpec(source=str(tiny_models[arch]), family=FAMILY[arch])
    loaded = load(spec, device="cpu")
    peft_model, result = softprompt.train(loaded, [task()], AlignConfig(num_virtual_tokens=3, steps=2))
    out = softprompt.save(peft_model, result, tmp_path / "soft")
    ours = load(ModelSpec(source=spec.source, family=spec.family, soft_prompt=str(out)), device="cpu")
    reloaded = PeftModel.from_pretrained(load(spec, device="cpu").model, str(out)).eval()
    item = task().item(2, 0)
    tokenizer = ours.tokenizer
    prompt = item.shared + item.rest
    option = " yes" if arch == "gpt2" else "yes"
    with torch.no_grad():
        if arch == "t5":
            enc = tokenizer(prompt, return_tensors="pt")
            target = tokenizer(option, add_special_tokens=False)["input_ids"]
            decoder = torch.tensor([[ours.model.config.decoder_start_token_id, *target[:-1]]])
            logits = reloaded(
                input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], decoder_input_ids=decoder
            ).logits[0]
            logp = torch.log_softmax(logits.float(), -1)
            peft_ll = sum(logp[t, tok].item() for t, tok in enumerate(target))
        else:
            context = tokenizer(prompt)["input_ids"]
            target = tokenizer(option, add_special_tokens=False)["input_ids"]
            ids = torch.tensor([context + target])
            logits = reloaded(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[0]
            logp = torch.log_softmax(logits.float(), -1)
            k = 3
            peft_ll = sum(logp[k + len(context) - 1 + t, tok].item() for t, tok in enumerate(target))
    our_ll = scores(ours, [item])[0].logliks[0]
    assert abs(peft_ll - our_ll) <= 1e-4, (peft_ll, our_ll)


def test_ablations_are_lambdas_at_zero_and_configs_validate():
    assert AlignConfig(lambda_kl=0, lambda_rep=0).ablation == "ce"
    assert AlignConfig(lambda_rep=0).ablation == "ce+kl"
    assert AlignConfig(lambda_kl=0).ablation == "ce+rep"
    assert AlignConfig().ablation == "ce+kl+rep"
    assert AlignConfig(objective="consistency").ablation == "consistency"
    for bad in [
        dict(objective="contrastive"),
        dict(objective="consistency", paraphrases=0),
        dict(num_virtual_tokens=0),
        dict(init="zeros"),
        dict(lambda_kl=-1),
        dict(learning_rate=0),
        dict(steps=0),
    ]:
        with pytest.raises(ConfigError):
            AlignConfig(**bad)


def test_training_is_seeded(tiny_models):
    spec = ModelSpec(source=str(tiny_models["t5"]), family="seq2seq")
    config = AlignConfig(num_virtual_tokens=2, steps=3, seed=7)
    curves = [softprompt.train(load(spec, device="cpu"), [task()], config)[1].curve for _ in range(2)]
    assert curves[0] == curves[1]


def long_task() -> softprompt.TrainingTask:
    """task() with every prompt far longer than tiny GPT-2's 512 positions."""
    short = task()

    def item(phrasing: int, index: int) -> ScoringItem:
        base = short.item(phrasing, index)
        return ScoringItem(base.shared, " apple banana carrot grape" * 150 + base.rest, base.options)

    return dataclasses.replace(short, item=item)


def test_training_cuts_prompts_to_the_input_length_as_scoring_does(tiny_models):
    spec = ModelSpec(source=str(tiny_models["gpt2"]), family="causal")
    config = AlignConfig(num_virtual_tokens=4, steps=2, instances_per_batch=2, paraphrases=1)
    with pytest.raises(IndexError):  # without a limit, the model cannot read these prompts at all
        softprompt.train(load(spec, device="cpu"), [long_task()], config)
    limited = dataclasses.replace(spec, max_input_tokens=512)
    loaded = load(limited, device="cpu")
    _, result = softprompt.train(loaded, [long_task()], config)
    assert all(math.isfinite(record["loss"]) for record in result.curve)
    # The prompts it trained on are those scoring reads behind a 4-token soft prompt.
    items = [long_task().item(p, 0) for p in (1, 2, 3)]
    scorer = load(limited, device="cpu")
    scorer.soft_prompt = torch.zeros(4, scorer.model.get_input_embeddings().weight.shape[1])
    trained = encode_items(loaded, items, virtual_tokens=config.num_virtual_tokens)
    assert trained == encode_items(scorer, items) and all(e.truncated for e in trained)


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
@pytest.mark.parametrize("options", [("yes", "no"), ("even number", "odd number here", "no")])
def test_the_shared_context_causal_loss_equals_the_per_option_reference(tiny_models, arch, options):
    # Prompts of different lengths (padding), one- and multi-token options, a trained-looking soft prompt:
    # the log-likelihoods, the hidden states and the soft prompt's gradient agree with one row per option.
    from peft import PromptTuningConfig, TaskType, get_peft_model

    from evaluation.ml.reference import causal_training_logliks

    loaded = load(ModelSpec(source=str(tiny_models[arch]), family="causal"), device="cpu")
    for parameter in loaded.model.parameters():
        parameter.requires_grad_(False)
    peft_model = get_peft_model(
        loaded.model, PromptTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=3)
    ).eval()
    weight = peft_model.prompt_encoder["default"].embedding.weight
    with torch.no_grad():
        weight.normal_(0, 1)
    items = [task(options).item(p, i) for p, i in ((1, 0), (2, 5), (3, 9), (4, 30))]
    encoded = encode_items(loaded, items, virtual_tokens=3)
    assert len({len(e.shared_ids) + len(e.rest_ids) for e in encoded}) > 1

    def run(forward):
        weight.grad = None
        logliks, hidden = forward(loaded, peft_model, encoded)
        loss = sum(torch.log_softmax(ll, -1)[0] for ll in logliks) + hidden.pow(2).mean()
        loss.backward()
        return [ll.detach() for ll in logliks], hidden.detach(), weight.grad.clone()

    fast_ll, fast_hidden, fast_grad = run(softprompt._causal_forward)
    ref_ll, ref_hidden, ref_grad = run(causal_training_logliks)
    assert max((a - b).abs().max().item() for a, b in zip(fast_ll, ref_ll, strict=True)) <= 1e-4
    assert torch.allclose(fast_hidden, ref_hidden, atol=1e-4)
    assert torch.allclose(fast_grad, ref_grad, atol=1e-4, rtol=1e-4)
    assert fast_grad.abs().sum() > 0


def test_the_consistency_objective_uses_no_labels_and_lowers_disagreement(tiny_models):
    # Swarm distillation: the gold answers never enter the loss, so training against flipped answers gives
    # the very same soft prompt; and the phrasings come to agree more.
    spec = ModelSpec(source=str(tiny_models["gpt2"]), family="causal")
    config = AlignConfig(
        num_virtual_tokens=3,
        steps=25,
        learning_rate=0.05,
        instances_per_batch=4,
        paraphrases=2,
        objective="consistency",
    )
    flipped = dataclasses.replace(task(), gold=lambda index: 1 - int(NUMBERS[index]) % 2)
    model_a, result = softprompt.train(load(spec, device="cpu"), [task()], config)
    model_b, _ = softprompt.train(load(spec, device="cpu"), [flipped], config)
    weights = [m.prompt_encoder["default"].embedding.weight for m in (model_a, model_b)]
    assert torch.equal(*weights)
    curve = [r["consistency"] for r in result.curve]
    assert all(r["loss"] == r["consistency"] for r in result.curve)
    assert sum(curve[-5:]) < sum(curve[:5])


def test_fleiss_kappa_discounts_chance_and_a_collapse():
    from evaluation.ml.agreement import fleiss_kappa

    assert fleiss_kappa([[0, 0, 0], [1, 1, 1], [2, 2, 2]]) == pytest.approx(1.0)
    # Worked by hand: mean pairwise agreement 0.75, chance (5/8)^2 + (3/8)^2 = 0.53125.
    assert fleiss_kappa([[0, 0], [1, 1], [0, 0], [0, 1]]) == pytest.approx((0.75 - 0.53125) / 0.46875)
    assert fleiss_kappa([[0, 0], [1, 1], [0, 1], [1, 0]]) == pytest.approx(0.0)
    # Every phrasing gives one answer to everything: perfect raw agreement, none beyond chance.
    assert fleiss_kappa([[1, 1, 1]] * 5) == 0.0
    with pytest.raises(ValueError):
        fleiss_kappa([[0], [1]])


def test_early_stopping_keeps_the_best_checked_prompt_after_patience_checks(tiny_models, monkeypatch):
    # The criterion's values are scripted here (the tiny models answer one option whatever the phrasing, so
    # their kappa stays 0): checks at steps 0, 2, 4, 6, 8; the best is step 4's, and two checks without a
    # higher one stop training at step 8, with step 4's prompt kept.
    scripted = iter([0.1, 0.3, 0.5, 0.4, 0.45, 0.9, 0.9])
    monkeypatch.setattr(softprompt, "fleiss_kappa", lambda predictions: next(scripted))
    spec = ModelSpec(source=str(tiny_models["t5"]), family="seq2seq")
    config = AlignConfig(
        num_virtual_tokens=2,
        steps=20,
        learning_rate=0.3,
        paraphrases=2,
        objective="consistency",
        patience=2,
        eval_every=2,
        validation_instances=4,
    )
    model, result = softprompt.train(load(spec, device="cpu"), [task()], config)
    assert len(result.curve) == 8 and result.kept_step == 4
    assert [c["step"] for c in result.checks] == [0, 2, 4, 6, 8]
    assert [r["step"] for r in result.curve if "val_kappa" in r] == [2, 4, 6, 8]
    assert result.curve[-1]["kept_step"] == 4
    # The kept prompt is step 4's: a run of 4 steps with the same draws (and a criterion that only rises) ends
    # on the same weights.
    rising = iter([0.1, 0.2, 0.3])
    monkeypatch.setattr(softprompt, "fleiss_kappa", lambda predictions: next(rising))
    short, _ = softprompt.train(load(spec, device="cpu"), [task()], dataclasses.replace(config, steps=4))
    weights = [m.prompt_encoder["default"].embedding.weight for m in (model, short)]
    assert torch.equal(*weights)


def test_early_stopping_reads_no_labels_and_never_trains_on_its_slice(tiny_models):
    spec = ModelSpec(source=str(tiny_models["gpt2"]), family="causal")
    config = AlignConfig(
        num_virtual_tokens=2,
        steps=6,
        paraphrases=2,
        objective="consistency",
        patience=5,
        eval_every=3,
        validation_instances=5,
    )
    flipped = dataclasses.replace(task(), gold=lambda index: 1 - int(NUMBERS[index]) % 2)
    model_a, result = softprompt.train(load(spec, device="cpu"), [task()], config)
    model_b, other = softprompt.train(load(spec, device="cpu"), [flipped], config)
    assert result.checks == other.checks and len(result.checks) == 3
    assert all(-1 <= c["kappa"] <= 1 and c["consistency"] >= 0 for c in result.checks)
    weights = [m.prompt_encoder["default"].embedding.weight for m in (model_a, model_b)]
    assert torch.equal(*weights)
    # The last five instances are the validation slice: never drawn for training.
    trained = {index for pairs in result.seen.values() for _, index in pairs}
    assert trained and max(trained) < len(NUMBERS) - 5


def test_early_stopping_settings_validate():
    for bad in [
        dict(patience=2),  # the labelled objective: not this criterion
        dict(objective="consistency", patience=-1),
        dict(objective="consistency", patience=2, eval_every=0),
        dict(objective="consistency", patience=2, validation_instances=0),
    ]:
        with pytest.raises(ConfigError):
            AlignConfig(**bad)
    one_phrasing = dataclasses.replace(task(), phrasings=(1,), anchors=(1,))
    with pytest.raises(ConfigError, match="two training phrasings"):
        softprompt.train(None, [one_phrasing], AlignConfig(objective="consistency", patience=1))


def test_out_of_memory_in_training_says_what_to_lower_and_lets_the_step_go(tiny_models):
    """A worker goes on to other jobs with the model loaded: the failed step's activations must not live on
    in the error it raises (they did, through the chained exception's frames, until 2026-12-07)."""
    import weakref

    from evaluation.ml.errors import OutOfMemoryInTraining

    loaded = load(ModelSpec(source=str(tiny_models["gpt2"]), family="causal"), device="cpu")
    seen, steps = [], []

    def fail_on_the_second_step(module, args):
        if steps:  # the first step ran
            seen.append(weakref.ref(args[0]))  # the hidden states reaching the last norm
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (injected)")

    hook = loaded.model.transformer.ln_f.register_forward_pre_hook(fail_on_the_second_step)
    try:
        config = AlignConfig(num_virtual_tokens=2, steps=3, seed=7)
        with pytest.raises(OutOfMemoryInTraining, match="at step 2: a micro-batch of") as raised:
            softprompt.train(loaded, [task()], config, on_step=lambda step, record: steps.append(step))
    finally:
        hook.remove()
    assert raised.value.__cause__ is None and seen
    import gc

    gc.collect()
    assert seen[0]() is None  # freed, while the error is still held
