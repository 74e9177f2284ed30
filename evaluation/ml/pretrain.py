"""Instruction-tune a seq2seq model from (prompt, answer) pairs: the offline demo model's training.

Plain teacher-forced cross-entropy on the answer's tokens, without an end-of-sequence token, exactly the
tokens the scorer reads back (see encoding.py). Seeded, so the same data gives the same model.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

import torch

from evaluation.ml.loading import LoadedModel
from evaluation.ml.logprobs import pad


def instruction_tune(
    loaded: LoadedModel,
    pairs: Sequence[tuple[str, str]],
    *,
    steps: int,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    seed: int = 0,
    on_step: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Train every weight of the model on the pairs; returns the loss per step."""
    if not pairs:
        raise ValueError("No training pairs.")
    rng = random.Random(seed)
    torch.manual_seed(seed)
    model, tokenizer, device = loaded.model, loaded.tokenizer, loaded.device
    model.train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=learning_rate, total_steps=steps, pct_start=0.1
    )
    encoded = [
        (tokenizer(prompt)["input_ids"], tokenizer(answer, add_special_tokens=False)["input_ids"])
        for prompt, answer in pairs
    ]
    pad_id = tokenizer.pad_token_id
    losses = []
    for step in range(1, steps + 1):
        batch = [encoded[rng.randrange(len(encoded))] for _ in range(batch_size)]
        ids, mask = pad([prompt for prompt, _ in batch], pad_id, device)
        labels, _ = pad([answer for _, answer in batch], -100, device)  # -100: the loss ignores padding
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        schedule.step()
        losses.append(float(loss.detach()))
        if on_step:
            on_step(step, losses[-1])
    model.eval()
    return losses
