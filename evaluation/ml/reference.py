"""The naive references: one full forward pass per (prompt, option), nothing shared or cached. score_naive
for the scorer (scoring.py); causal_training_logliks for soft-prompt training (softprompt.py).

It is slow on purpose and kept simple enough to check by eye; the fast paths in scoring.py must match it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from evaluation.ml.encoding import EncodedItem
from evaluation.ml.families import CAUSAL, SEQ2SEQ
from evaluation.ml.items import OptionScores, ScoringItem
from evaluation.ml.loading import LoadedModel
from evaluation.ml.logprobs import pad, token_logprobs
from evaluation.ml.scoring import encode_items, scores_of, with_soft_prompt


@torch.inference_mode()
def score_naive(loaded: LoadedModel, items: Sequence[ScoringItem]) -> list[OptionScores]:
    option_logits = NAIVE_PATHS[loaded.family]
    results = []
    for item in encode_items(loaded, items):
        logliks = []
        for option in item.option_ids:
            logits, positions = option_logits(loaded, item, option)
            logprobs = torch.log_softmax(logits.float(), dim=-1)
            logliks.append(sum(logprobs[p, token].item() for p, token in zip(positions, option)))
        results.append(scores_of(item, logliks))
    return results


def _inputs(loaded: LoadedModel, ids: torch.Tensor) -> dict:
    # A soft prompt's virtual tokens go in front of the (encoder) input, as PEFT's prompt tuning does.
    if not loaded.virtual_tokens:
        return {"input_ids": ids}
    return {"inputs_embeds": with_soft_prompt(loaded, ids)[0]}


def _seq2seq_option(loaded: LoadedModel, item: EncodedItem, option: list[int]) -> tuple[torch.Tensor, range]:
    """One full encoder-decoder pass for the option: its logits, and the positions that predict its tokens."""
    model, device = loaded.model, loaded.device
    encoder_ids = torch.tensor([item.rest_ids], device=device)
    decoder_ids = torch.tensor([[model.config.decoder_start_token_id] + option[:-1]], device=device)
    logits = model(**_inputs(loaded, encoder_ids), decoder_input_ids=decoder_ids).logits[0]
    return logits, range(len(option))


def _causal_option(loaded: LoadedModel, item: EncodedItem, option: list[int]) -> tuple[torch.Tensor, range]:
    """One full pass over prompt and option: its logits, and the positions that predict the option's tokens."""
    prompt = list(item.shared_ids) + item.rest_ids
    # The option's last token is only predicted, never read: the model's input length counts the prompt and
    # the rest of the option.
    ids = torch.tensor([prompt + option[:-1]], device=loaded.device)
    logits = loaded.model(**_inputs(loaded, ids)).logits[0]
    # The token at position t is predicted by the logits at t - 1 (after any virtual tokens).
    start = loaded.virtual_tokens + len(prompt) - 1
    return logits, range(start, start + len(option))


# The naive path of each family (families.py): one full forward pass per (prompt, option).
NAIVE_PATHS = {SEQ2SEQ: _seq2seq_option, CAUSAL: _causal_option}


def causal_training_logliks(
    loaded: LoadedModel, peft_model, encoded: list[EncodedItem]
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """What softprompt._causal_forward computes, the slow way (with gradients): one row per (item, option)
    through PEFT's own forward, which puts the virtual tokens in front. A row ends before its option's last
    token, which is only predicted. Returns each item's option log-likelihoods and the last prompt token's
    final hidden state."""
    device = loaded.device
    k = peft_model.peft_config["default"].num_virtual_tokens
    rows, spans = [], []
    for b, e in enumerate(encoded):
        prompt = [*e.shared_ids, *e.rest_ids]
        for option in e.option_ids:
            rows.append(prompt + option[:-1])
            spans.append((b, len(prompt), option))
    ids, mask = pad(rows, loaded.tokenizer.pad_token_id, device)
    out = peft_model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    logits = out.logits.float()
    sums, hidden = [], {}
    for r, (b, prompt_len, option) in enumerate(spans):
        # Position t is predicted by the logits at t - 1; the virtual tokens shift everything by k.
        positions = torch.arange(k + prompt_len - 1, k + prompt_len - 1 + len(option), device=device)
        targets = torch.tensor(option, dtype=torch.long, device=device)
        sums.append(token_logprobs(logits[r, positions], targets).sum())
        hidden.setdefault(b, out.hidden_states[-1][r, k + prompt_len - 1].float())
    per_item, start = [], 0
    for e in encoded:
        per_item.append(torch.stack(sums[start : start + len(e.option_ids)]))
        start += len(e.option_ids)
    return per_item, torch.stack([hidden[b] for b in range(len(encoded))])
