"""Soft-prompt alignment (the study's fix): k virtual-token embeddings in front of a frozen model's input,
trained so that equivalent phrasings of a task get the same answers and representations.

Loss per batch (instances, each under an anchor phrasing and several paraphrases):
    CE(gold option | each phrasing)
  + lambda_kl  * KL(p(options | anchor) || p(options | paraphrase))
  + lambda_rep * (1 - cos(h(anchor), h(paraphrase)))
p is the softmax over the options' summed log-likelihoods (rank classification, as scoring.py computes it);
h is the mean of the encoder's last hidden states (seq2seq) or the last prompt token's final hidden state
(causal). lambda_kl = lambda_rep = 0 is plain prompt tuning.

objective="consistency" trains on agreement alone, as swarm distillation does (Zhou et al. 2022, "Prompt
Consistency for Zero-Shot Task Generalization"): no labels, and for every ordered pair (i, j) of phrasings of
an instance KL(stop-gradient p_i || p_j), averaged. (Their method tunes LoRA weights on the test inputs; here
it tunes the same soft prompt on the training split, so it compares with the others like for like.)

Early stopping for consistency, which has no labels to stop on (config.patience > 0): each task keeps its
last `validation_instances` training instances out of training, unlabeled, and every `eval_every` steps the
prompt is checked on them under a fixed few of the task's phrasings. The criterion is the agreement between
the phrasings' predicted options, Fleiss' kappa (agreement.py), macro-averaged over tasks: unsupervised model
selection as prompt consistency calls for, and kappa, unlike the consistency loss itself, does not reward a
prompt that makes every phrasing give one answer to everything. After `patience` checks without a higher kappa
training stops and the best check's prompt (step 0: the initial one) is kept; the curve records each check.

PEFT holds the virtual tokens (`PromptTuningConfig`, `get_peft_model`) and writes the artifact, so
`PeftModel.from_pretrained(base, path)` loads what we train; the loss is ours, on PEFT's forward. Scoring
reads the same embeddings back (`loading.load_soft_prompt`) and runs the fast paths of scoring.py with them.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from evaluation.ml.agreement import fleiss_kappa
from evaluation.ml.compat import cache_of
from evaluation.ml.config import AlignConfig, ConfigError
from evaluation.ml.encoding import EncodedItem
from evaluation.ml.errors import OutOfMemoryInTraining
from evaluation.ml.families import CAUSAL, SEQ2SEQ
from evaluation.ml.forward import (
    continue_causal,
    is_out_of_memory,
    longer_options,
    plain_output_head,
    prepend_virtual_tokens,
)
from evaluation.ml.items import ScoringItem, TrainingTask
from evaluation.ml.loading import LoadedModel
from evaluation.ml.logprobs import option_logliks, pad
from evaluation.ml.scoring import encode_items

TRAINING_FILE = "training.json"


@dataclass
class TrainingResult:
    config: AlignConfig
    curve: list[dict] = field(default_factory=list)  # one record per optimiser step
    seen: dict[str, list] = field(default_factory=dict)  # task name -> [[phrasing id, instance index], ...]
    # Early stopping: every check ({"step", "kappa", "consistency"}, step 0 before training) and the step whose
    # prompt was kept. Empty and None without it.
    checks: list[dict] = field(default_factory=list)
    kept_step: int | None = None


def train(
    loaded: LoadedModel,
    tasks: Sequence[TrainingTask],
    config: AlignConfig,
    *,
    on_step: Callable[[int, dict], bool | None] | None = None,
):
    """Train a soft prompt on the frozen model; returns (peft_model, TrainingResult).

    on_step(step, record) is called after every optimiser step; returning False stops training early
    (say, the run was cancelled)."""
    from peft import PromptTuningConfig, TaskType, get_peft_model

    tasks = [t for t in tasks if len(t.phrasings) >= 1 and t.instance_count >= 1]
    if not tasks:
        raise ConfigError("Nothing to train on: no task has a training phrasing and a training instance.")
    validation = _validation_slices(tasks, config) if config.patience else []
    if validation:
        # The training draws only from the instances before each task's validation slice.
        held = {v.task.name: len(v.instances) for v in validation}
        tasks = [replace(t, instance_count=t.instance_count - held.get(t.name, 0)) for t in tasks]
    rng = random.Random(config.seed)
    torch.manual_seed(config.seed)
    model = loaded.model
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    peft_config = PromptTuningConfig(
        task_type=TaskType[loaded.family.peft_task_type],
        num_virtual_tokens=config.num_virtual_tokens,
        # One set of virtual tokens, for the encoder: PEFT's prompt tuning never feeds a second set to the decoder.
        num_transformer_submodules=1,
    )
    peft_model = get_peft_model(model, peft_config)
    prompt = peft_model.prompt_encoder["default"].embedding
    with torch.no_grad():
        prompt.weight.copy_(_initial_embeddings(loaded, tasks, config, rng).to(prompt.weight.dtype))
    prompt.weight.requires_grad_(True)
    optimiser = torch.optim.Adam([prompt.weight], lr=config.learning_rate)
    result = TrainingResult(config)
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16) if loaded.device.type == "cuda" else _no_autocast()
    )
    # The model is frozen and scored without dropout; training in eval mode keeps the steps deterministic and
    # trains the prompt for the model as it will be scored.
    peft_model.eval()
    stopper = (
        _EarlyStopping(loaded, peft_model, validation, config, prompt, autocast, result)
        if validation
        else None
    )
    for step in range(1, config.steps + 1):
        optimiser.zero_grad(set_to_none=True)
        record = {"step": step, "loss": 0.0, "ce": 0.0, "kl": 0.0, "rep": 0.0, "consistency": 0.0}
        out_of_memory = False
        try:
            for _ in range(config.grad_accumulation):
                batch = _sample(tasks, config, rng, result.seen)
                with autocast:
                    terms = _losses(loaded, peft_model, batch)
                if config.objective == "consistency":
                    loss = terms["consistency"]
                else:
                    loss = terms["ce"] + config.lambda_kl * terms["kl"] + config.lambda_rep * terms["rep"]
                (loss / config.grad_accumulation).backward()
                for key, value in [("loss", loss), *terms.items()]:
                    record[key] += float(value.detach()) / config.grad_accumulation
            optimiser.step()  # Adam allocates its state here, on the first step
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            out_of_memory = True
        if out_of_memory:
            # Outside the except block, and not chained to it, as the scorer's back-off: the exception's frames
            # held the step's activations, which empty_cache could then not give back (the worker goes on to
            # other jobs with this model loaded).
            terms = loss = batch = None  # the last step's graph and batch, let go
            optimiser.zero_grad(set_to_none=True)
            if loaded.device.type == "cuda":
                torch.cuda.empty_cache()
            raise OutOfMemoryInTraining(_oom_message(loaded, config, step))
        stop = stopper is not None and stopper.check(step, record, last=step == config.steps)
        result.curve.append(record)
        if on_step is not None and on_step(step, record) is False:
            break
        if stop:
            break
    prompt.weight.requires_grad_(False)
    if stopper is not None:
        stopper.keep_best()
        if result.curve:  # on the row's curve too, where the page reads it
            result.curve[-1]["kept_step"] = result.kept_step
    return peft_model, result


@dataclass(frozen=True)
class _Validation:
    task: TrainingTask
    instances: tuple[int, ...]  # the task's last instance indices, never trained on
    phrasings: tuple[int, ...]  # a fixed few of its phrasings, at least two


def _validation_slices(tasks: Sequence[TrainingTask], config: AlignConfig) -> list[_Validation]:
    """Per task with two or more phrasings and instances: its slice of unlabeled validation instances (at most
    half of them) and the phrasings they are checked under (the anchor and `paraphrases` others, at least 2)."""
    rng = random.Random(f"{config.seed}:validation")  # its own stream: the training's draws do not move
    out = []
    for task in tasks:
        size = min(config.validation_instances, task.instance_count // 2)
        if size < 1 or len(task.phrasings) < 2:
            continue
        count = min(len(task.phrasings), max(2, 1 + config.paraphrases))
        phrasings = tuple(sorted(rng.sample(list(task.phrasings), count)))
        instances = tuple(range(task.instance_count - size, task.instance_count))
        out.append(_Validation(task, instances, phrasings))
    if not out:
        raise ConfigError(
            "patience: early stopping needs a task with at least two training phrasings and two training "
            "instances (one to train on, one to check agreement on); set patience to 0 to train without it."
        )
    return out


class _EarlyStopping:
    """Checks the agreement between phrasings on the validation slices, keeps the best prompt, says when to stop."""

    def __init__(self, loaded, peft_model, validation, config, prompt, autocast, result) -> None:
        self.loaded, self.peft_model, self.validation = loaded, peft_model, validation
        self.config, self.prompt, self.autocast, self.result = config, prompt, autocast, result
        self.best_kappa, self.best_weights, self.since_best = float("-inf"), None, 0
        self._check(0)

    def check(self, step: int, record: dict, *, last: bool) -> bool:
        """At every `eval_every`-th step and the last: check, add the check to the record; True: stop now."""
        if step % self.config.eval_every and not last:
            return False
        kappa, consistency = self._check(step)
        record["val_kappa"], record["val_consistency"] = kappa, consistency
        return self.since_best >= self.config.patience

    def keep_best(self) -> None:
        with torch.no_grad():
            self.prompt.weight.copy_(self.best_weights)
        self.result.kept_step = self.result.checks[-1 - self.since_best]["step"]

    def _check(self, step: int) -> tuple[float, float]:
        kappas, losses = [], []
        with torch.no_grad(), self.autocast:
            for v in self.validation:
                logps = self._logps(v)  # (instances, phrasings, options)
                kappas.append(fleiss_kappa(logps.argmax(dim=-1).cpu().numpy()))
                p = logps.exp()
                # Swarm distillation's loss on the slice: KL(p_i || p_j) over ordered pairs of phrasings.
                terms = p[:, :, None, :] * (logps[:, :, None, :] - logps[:, None, :, :])
                pairs = torch.where(p[:, :, None, :] > 0, terms, 0.0).sum(-1)  # padded options count 0
                k = logps.shape[1]
                losses.append(float(pairs.sum() / (logps.shape[0] * k * (k - 1))))
        kappa, consistency = float(sum(kappas) / len(kappas)), float(sum(losses) / len(losses))
        self.result.checks.append({"step": step, "kappa": kappa, "consistency": consistency})
        if kappa > self.best_kappa:
            self.best_kappa, self.since_best = kappa, 0
            self.best_weights = self.prompt.weight.detach().clone()
        else:
            self.since_best += 1
        return kappa, consistency

    def _logps(self, v: _Validation) -> torch.Tensor:
        """Log-softmax over the options for each (validation instance, phrasing), a micro-batch at a time."""
        per_batch = max(1, self.config.instances_per_batch)
        out = []
        for start in range(0, len(v.instances), per_batch):
            rows = [
                _Row(v.task, instance, phrasing, v.task.item(phrasing, instance), group)
                for group, instance in enumerate(v.instances[start : start + per_batch])
                for phrasing in v.phrasings
            ]
            logliks, _ = _forward(self.loaded, self.peft_model, rows)
            out += [torch.log_softmax(ll.float(), dim=-1) for ll in logliks]
        widths = {t.shape[0] for t in out}
        if len(widths) > 1:  # options differ in number between instances: pad with impossible options
            width = max(widths)
            out = [torch.nn.functional.pad(t, (0, width - t.shape[0]), value=float("-inf")) for t in out]
        return torch.stack(out).view(len(v.instances), len(v.phrasings), -1)


def _oom_message(loaded: LoadedModel, config: AlignConfig, step: int) -> str:
    rows = config.instances_per_batch * (1 + config.paraphrases)
    return (
        f"Out of memory on {loaded.device} at step {step}: a micro-batch of {config.instances_per_batch} "
        f"instance(s) x {1 + config.paraphrases} phrasing(s) ({rows} prompts) does not fit. Lower "
        "instances_per_batch or paraphrases and raise grad_accumulation to keep the effective batch, or use a "
        "device with more memory."
    )


class _no_autocast:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@dataclass
class _Row:
    task: TrainingTask
    instance: int
    phrasing: int
    item: ScoringItem
    group: int  # rows of one instance share a group; the first row of a group is its anchor


def _sample(tasks: Sequence[TrainingTask], config: AlignConfig, rng: random.Random, seen: dict) -> list[_Row]:
    """Instances from tasks chosen uniformly, each under an anchor (an observed phrasing when the task has
    one) and up to `paraphrases` other training phrasings."""
    rows = []
    for group in range(config.instances_per_batch):
        task = rng.choice(tasks)
        instance = rng.randrange(task.instance_count)
        anchor = rng.choice(task.anchors or task.phrasings)
        others = [p for p in task.phrasings if p != anchor]
        chosen = [anchor, *rng.sample(others, min(config.paraphrases, len(others)))]
        for phrasing in chosen:
            rows.append(_Row(task, instance, phrasing, task.item(phrasing, instance), group))
            seen.setdefault(task.name, set()).add((phrasing, instance))
    return rows


def _forward(loaded: LoadedModel, peft_model, rows: list[_Row]):
    """Per row: its options' summed log-likelihoods, and its pooled hidden state."""
    # Prompts cut to the model's input length as scoring cuts them, the virtual tokens counted against it.
    k = peft_model.peft_config["default"].num_virtual_tokens
    encoded = encode_items(loaded, [row.item for row in rows], virtual_tokens=k)
    return FORWARDS[loaded.family](loaded, peft_model, encoded)


def _losses(loaded: LoadedModel, peft_model, rows: list[_Row]) -> dict[str, torch.Tensor]:
    logliks, hidden = _forward(loaded, peft_model, rows)
    device = hidden.device
    ce, kl, rep, agree = [], [], [], []
    for b, row in enumerate(rows):
        logp = torch.log_softmax(logliks[b], dim=-1)
        ce.append(-logp[row.task.gold(row.instance)])
    groups: dict[int, list[int]] = {}
    for b, row in enumerate(rows):
        groups.setdefault(row.group, []).append(b)
    for members in groups.values():
        anchor, paraphrases = members[0], members[1:]
        p_anchor = torch.log_softmax(logliks[anchor], dim=-1)
        for b in paraphrases:
            p_para = torch.log_softmax(logliks[b], dim=-1)
            kl.append(torch.sum(p_anchor.exp() * (p_anchor - p_para)))
            rep.append(1 - torch.nn.functional.cosine_similarity(hidden[anchor], hidden[b], dim=0))
        # Swarm distillation: each phrasing's prediction, held fixed, is a target for every other's.
        logps = {b: torch.log_softmax(logliks[b], dim=-1) for b in members}
        for i in members:
            target = logps[i].detach()
            for j in members:
                if i != j:
                    agree.append(torch.sum(target.exp() * (target - logps[j])))
    zero = torch.zeros((), device=device)
    return {
        "ce": torch.stack(ce).mean(),
        "kl": torch.stack(kl).mean() if kl else zero,
        "rep": torch.stack(rep).mean() if rep else zero,
        "consistency": torch.stack(agree).mean() if agree else zero,
    }


def _seq2seq_forward(loaded: LoadedModel, peft_model, encoded: list[EncodedItem]):
    """Per item: its options' summed log-likelihoods (a vector, differentiable) and the mean-pooled encoder
    states. The encoder runs once per item; every option is a decoder row reading those states."""
    from transformers.modeling_outputs import BaseModelOutput

    model, device = loaded.model, loaded.device
    pad_id = loaded.tokenizer.pad_token_id
    embeds, mask = _with_prompt(loaded, peft_model, *pad([e.rest_ids for e in encoded], pad_id, device))
    hidden = model.get_encoder()(inputs_embeds=embeds, attention_mask=mask).last_hidden_state
    pooled = (hidden * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)
    rows = [(b, option) for b, e in enumerate(encoded) for option in e.option_ids]
    row_item = torch.tensor([b for b, _ in rows], device=device)
    start = model.config.decoder_start_token_id
    decoder_ids, decoder_mask = pad([[start, *option[:-1]] for _, option in rows], pad_id, device)
    targets, _ = pad([option for _, option in rows], pad_id, device)
    logits = model(
        encoder_outputs=BaseModelOutput(last_hidden_state=hidden[row_item]),
        attention_mask=mask[row_item],
        decoder_input_ids=decoder_ids,
        decoder_attention_mask=decoder_mask,
    ).logits
    sums = option_logliks(logits, targets, decoder_mask)
    return _per_item(sums, encoded), pooled.float()


def _causal_forward(loaded: LoadedModel, peft_model, encoded: list[EncodedItem]):
    """Per item: its options' summed log-likelihoods and the last prompt token's final hidden state.

    The context (virtual tokens + prompt) runs once per item, as the scorer's causal fast path runs it: its
    last position gives every option's first token and the hidden state h. Only options longer than one token
    need more, one row each that continues from the context's cache instead of recomputing the context.
    `reference.causal_training_logliks` is the one-row-per-option version this must equal."""
    model, device = loaded.model, loaded.device
    pad_id = loaded.tokenizer.pad_token_id
    size = len(encoded)
    ids, mask = pad([[*e.shared_ids, *e.rest_ids] for e in encoded], pad_id, device)
    embeds, attention = _with_prompt(loaded, peft_model, ids, mask)
    last = attention.sum(dim=1) - 1
    rows = longer_options([e.option_ids for e in encoded])
    # The cache is kept only when some option continues from it: letters and one-token labels need none.
    use_cache = bool(rows)

    # Phase 1: the context pass. The output layer (vocabulary-sized) runs at each row's last position only.
    rows_index = torch.arange(size, device=device)
    if plain_output_head(model):
        out = model.base_model(inputs_embeds=embeds, attention_mask=attention, use_cache=use_cache)
        hidden = out.last_hidden_state[rows_index, last]
        logits = model.get_output_embeddings()(hidden)
    else:
        out = model(
            inputs_embeds=embeds, attention_mask=attention, use_cache=use_cache, output_hidden_states=True
        )
        hidden = out.hidden_states[-1][rows_index, last]
        logits = out.logits[rows_index, last]
    first = torch.log_softmax(logits.float(), dim=-1)
    sums = {(b, j): first[b, o[0]] for b, e in enumerate(encoded) for j, o in enumerate(e.option_ids)}

    # Phase 2: options longer than one token, one row each on top of its item's cached context.
    if rows:
        for (b, j, _), total in zip(rows, continue_causal(model, cache_of(out), attention, rows, pad_id)):
            sums[b, j] = sums[b, j] + total
    flat = torch.stack([sums[b, j] for b, e in enumerate(encoded) for j in range(len(e.option_ids))])
    return _per_item(flat, encoded), hidden.float()


# How each family's training loss runs (families.py): per item, its options' summed log-likelihoods and the
# pooled hidden state the representation term compares.
FORWARDS = {SEQ2SEQ: _seq2seq_forward, CAUSAL: _causal_forward}


def _with_prompt(loaded: LoadedModel, peft_model, ids: torch.Tensor, mask: torch.Tensor):
    """Input embeddings for `ids` with the trained prompt's virtual tokens in front, the mask widened to match."""
    embeds = loaded.model.get_input_embeddings()(ids)
    k = peft_model.peft_config["default"].num_virtual_tokens
    soft = peft_model.get_prompt(batch_size=ids.shape[0]).to(embeds.dtype)[:, :k]
    return prepend_virtual_tokens(soft, embeds, mask)


def _per_item(sums: torch.Tensor, encoded: list[EncodedItem]) -> list[torch.Tensor]:
    out, start = [], 0
    for e in encoded:
        out.append(sums[start : start + len(e.option_ids)])
        start += len(e.option_ids)
    return out


def _initial_embeddings(
    loaded: LoadedModel, tasks: Sequence[TrainingTask], config: AlignConfig, rng: random.Random
) -> torch.Tensor:
    """k rows: a training phrasing's token embeddings (repeated to length k), or embeddings of tokens
    sampled from the vocabulary."""
    embeddings = loaded.model.get_input_embeddings().weight.detach()
    k = config.num_virtual_tokens
    ids: list[int] = []
    if config.init == "phrasing":
        task = tasks[0]
        phrasing = (task.anchors or task.phrasings)[0]
        item = task.item(phrasing, 0)
        text_ids = loaded.tokenizer(item.shared + item.rest, add_special_tokens=False)["input_ids"]
        ids = [text_ids[i % len(text_ids)] for i in range(k)] if text_ids else []
    if not ids:
        # Sampled among the first 5,000 ids, where BPE vocabularies keep their most frequent tokens.
        ids = [rng.randrange(min(5000, embeddings.shape[0])) for _ in range(k)]
    return embeddings[torch.tensor(ids, device=embeddings.device)].clone()


def save(peft_model, result: TrainingResult, directory: str | Path) -> Path:
    """Write the PEFT adapter (adapter_config.json, adapter_model.safetensors) and training.json (the
    config, the loss curve and exactly which (phrasing, instance) pairs were seen)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    peft_model.save_pretrained(str(directory), safe_serialization=True)
    record = {
        "config": asdict(result.config),
        "curve": result.curve,
        "seen": {name: sorted([list(pair) for pair in pairs]) for name, pairs in result.seen.items()},
        "early_stopping": {"checks": result.checks, "kept_step": result.kept_step},
    }
    (directory / TRAINING_FILE).write_text(json.dumps(record), encoding="utf-8")
    return directory
