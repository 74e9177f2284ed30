"""Pieces of a batched forward pass that the fast scorer (scoring.py) and soft-prompt training (softprompt.py)
share, so that training computes its log-likelihoods exactly as scoring does: virtual tokens in front of the
input, the output layer run apart from the backbone, batch rows taken out of a key/value cache, and the
options longer than one token continued from their item's cache. Also what counts as out of memory."""

from __future__ import annotations

import weakref

import torch

from evaluation.ml.compat import with_cache
from evaluation.ml.logprobs import option_logliks, pad, to_device

# An option row: (item's row in the batch, option index, option token ids).
OptionRow = tuple[int, int, list[int]]


def is_out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, torch.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()
    )


def prepend_virtual_tokens(
    soft: torch.Tensor, embeds: torch.Tensor, mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`embeds` (rows, length, hidden) with the virtual tokens `soft` (rows, k, hidden) in front, and the mask
    widened to match: what PEFT's prompt tuning feeds the model (the encoder, for seq2seq)."""
    embeds = torch.cat([soft, embeds], dim=1)
    if mask is not None:
        rows, k = soft.shape[0], soft.shape[1]
        mask = torch.cat([torch.ones(rows, k, dtype=mask.dtype, device=mask.device), mask], dim=1)
    return embeds, mask


def plain_output_head(model) -> bool:
    """True when logits are just the output layer applied to the backbone's last hidden states, so the
    backbone can run alone; models that scale or cap their logits take the full forward. Known scalings
    (Gemma's soft cap, Cohere's logit_scale, Granite's logits_scaling) say so in the config; for any other
    architecture that changes its logits in forward(), a three-token forward, once per model, compares the
    output layer's logits with the model's own."""
    config = model.config
    if any(getattr(config, name, None) not in (None, 1, 1.0) for name in LOGIT_SCALINGS):
        return False
    backbone = getattr(model, "base_model", None)
    if backbone is None or backbone is model or model.get_output_embeddings() is None:
        return False
    if model not in _plain_heads:
        _plain_heads[model] = _output_layer_gives_the_logits(model)
    return _plain_heads[model]


# Config fields by which an architecture scales or caps its logits after the output layer.
LOGIT_SCALINGS = ("final_logit_softcapping", "logit_scale", "logits_scaling", "lm_head_multiplier")
_plain_heads: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _output_layer_gives_the_logits(model) -> bool:
    # Both sides run the same operations, so they agree to rounding; anything the check cannot run (a model
    # that needs more inputs than ids) takes the full forward.
    head = model.get_output_embeddings()
    parameter = next(model.parameters())
    vocabulary = getattr(head, "out_features", None) or head.weight.shape[0]
    ids = torch.tensor([[1, 2, 3]], device=parameter.device) % vocabulary
    training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            full = model(input_ids=ids).logits.float()
            plain = head(model.base_model(input_ids=ids).last_hidden_state).float()
    except Exception:
        return False
    finally:
        model.train(training)
    return plain.shape == full.shape and bool(
        torch.allclose(plain, full, rtol=1e-4, atol=1e-4 * max(1.0, full.abs().max().item()))
    )


def select_rows(cache, index: torch.Tensor, config=None):
    """A new cache holding the given batch rows (a row may repeat); the source cache is left as it was."""
    from transformers import DynamicCache, EncoderDecoderCache

    def rows_of(source, config=None):
        return DynamicCache(
            [(layer.keys[index], layer.values[index]) for layer in source.layers], config=config
        )

    if isinstance(cache, EncoderDecoderCache):
        return EncoderDecoderCache(rows_of(cache.self_attention_cache), rows_of(cache.cross_attention_cache))
    return rows_of(cache, config)


def longer_options(options: list[list[list[int]]]) -> list[OptionRow]:
    """The options of two or more tokens, one row each: those that need more than the first token's step."""
    return [(b, j, o) for b, opts in enumerate(options) for j, o in enumerate(opts) if len(o) > 1]


def length_groups(rows: list[OptionRow], size: int) -> list[list[OptionRow]]:
    """Option rows sorted by length, longest first, in groups of at most `size` rows."""
    rows = sorted(rows, key=lambda row: -len(row[2]))
    return [rows[i : i + size] for i in range(0, len(rows), size)]


def continue_causal(
    model, cache, attention: torch.Tensor, rows: list[OptionRow], pad_id: int
) -> torch.Tensor:
    """The summed log-likelihoods of each option row's tokens after its first, one row per option on top of
    its item's cached context. cache: the context pass's; attention: its (items, context) mask, whose sum per
    item is where the option starts."""
    device = attention.device
    row_item, inputs, input_mask, targets, target_mask = _option_tensors(rows, pad_id, device)
    positions = attention.sum(dim=1)[row_item, None] + torch.arange(inputs.shape[1], device=device)
    logits = model(
        input_ids=inputs,
        attention_mask=torch.cat([attention[row_item], input_mask], dim=1),
        position_ids=positions,
        **with_cache(select_rows(cache, row_item, model.config)),
        use_cache=True,
    ).logits
    return option_logliks(logits, targets, target_mask)


def continue_seq2seq(
    model, cache, hidden: torch.Tensor, attention: torch.Tensor, rows: list[OptionRow], pad_id: int
) -> torch.Tensor:
    """The summed log-likelihoods of each option row's tokens after its first, one decoder row per option
    continuing from its item's cache after the start step. The cache holds the cross-attention keys and
    values of the encoder states, so they are computed once per item, not once per option. hidden and
    attention: the encoder's states and mask, per item."""
    from transformers.modeling_outputs import BaseModelOutput

    device = attention.device
    row_item, inputs, input_mask, targets, target_mask = _option_tensors(rows, pad_id, device)
    decoder_mask = torch.cat([torch.ones(len(rows), 1, dtype=torch.long, device=device), input_mask], dim=1)
    logits = model(
        encoder_outputs=BaseModelOutput(last_hidden_state=hidden[row_item]),
        attention_mask=attention[row_item],
        decoder_input_ids=inputs,
        decoder_attention_mask=decoder_mask,
        **with_cache(select_rows(cache, row_item)),
        use_cache=True,
    ).logits
    return option_logliks(logits, targets, target_mask)


def _option_tensors(rows: list[OptionRow], pad_id: int, device: torch.device):
    """Each row's item index, its input (the option but its last token) and its targets (but its first)."""
    row_item = to_device(torch.tensor([b for b, _, _ in rows]), device)
    inputs, input_mask = pad([o[:-1] for _, _, o in rows], pad_id, device)
    targets, target_mask = pad([o[1:] for _, _, o in rows], pad_id, device)
    return row_item, inputs, input_mask, targets, target_mask
