"""The naive reference scorer: one full forward pass per (prompt, option), nothing shared or cached.

It is slow on purpose and kept simple enough to check by eye; the fast paths in scoring.py must match it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from evaluation.ml.loading import LoadedModel
from evaluation.ml.scoring import OptionScores, ScoringItem, encode_items, scores_of, with_soft_prompt


@torch.inference_mode()
def score_naive(loaded: LoadedModel, items: Sequence[ScoringItem]) -> list[OptionScores]:
    model, device = loaded.model, loaded.device
    virtual = loaded.virtual_tokens

    def inputs(ids: torch.Tensor) -> dict:
        # A soft prompt's virtual tokens go in front of the (encoder) input, as PEFT's prompt tuning does.
        return {"input_ids": ids} if not virtual else {"inputs_embeds": with_soft_prompt(loaded, ids)[0]}

    results = []
    for item in encode_items(loaded, items):
        logliks = []
        for option in item.option_ids:
            if loaded.is_seq2seq:
                encoder_ids = torch.tensor([item.rest_ids], device=device)
                decoder_ids = torch.tensor(
                    [[model.config.decoder_start_token_id] + option[:-1]], device=device
                )
                logits = model(**inputs(encoder_ids), decoder_input_ids=decoder_ids).logits[0]
                positions = range(len(option))
            else:
                prompt = list(item.shared_ids) + item.rest_ids
                # The option's last token is only predicted, never read: the model's input length counts
                # the prompt and the rest of the option.
                ids = torch.tensor([prompt + option[:-1]], device=device)
                logits = model(**inputs(ids)).logits[0]
                # The token at position t is predicted by the logits at t - 1 (after any virtual tokens).
                start = virtual + len(prompt) - 1
                positions = range(start, start + len(option))
            logprobs = torch.log_softmax(logits.float(), dim=-1)
            logliks.append(sum(logprobs[p, token].item() for p, token in zip(positions, option)))
        results.append(scores_of(item, logliks))
    return results
