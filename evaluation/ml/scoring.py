"""Rank classification, fast: score every option of every item by log-likelihood and predict the argmax.

The fast paths share work that the naive reference (reference.py) repeats, and tests prove both give the
same log-likelihoods to 1e-4:
- seq2seq: one encoder pass per item; one decoder step scores every option's first token (all of a letter
  or yes/no label space); longer options continue from that step's cache, so the cross-attention keys and
  values of the encoder states are computed once per item, not once per option.
- causal: the shared prefix of a phrasing is run once and its key/value cache reused by every instance;
  the options' first tokens are read from the context pass, and only longer options need a second pass,
  which reuses the context's cache instead of recomputing it.
Items are sorted by length so batches carry little padding; the batch size halves on out-of-memory.
A prompt cut to the model's input length (encoding.py) is scored like any other: the causal path shares
only what is left of its phrasing's prefix, often nothing but the BOS token.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch

from evaluation.ml.compat import cache_of, with_cache
from evaluation.ml.config import ScoreConfig
from evaluation.ml.encoding import EncodedItem, Encoder
from evaluation.ml.errors import OutOfMemoryAtBatchSizeOne
from evaluation.ml.families import CAUSAL, SEQ2SEQ
from evaluation.ml.forward import (
    continue_causal,
    continue_seq2seq,
    is_out_of_memory,
    length_groups,
    longer_options,
    plain_output_head,
    prepend_virtual_tokens,
)
from evaluation.ml.loading import LoadedModel
from evaluation.ml.logprobs import pad
from evaluation.ml.prompts import FORMATS


@dataclass(frozen=True)
class ScoringItem:
    shared: str  # text every instance of the phrasing starts with (see prompts.py)
    rest: str  # the rest of this instance's prompt
    options: tuple[str, ...]  # what the model may answer, in option order


@dataclass(frozen=True)
class OptionScores:
    logliks: tuple[float, ...]  # sum of log p(option tokens | prompt), per option
    lengths: tuple[int, ...]  # option lengths in tokens, for length-normalised scores
    truncated: bool = False  # the prompt was cut to the model's input length

    @property
    def predicted(self) -> int:
        return max(range(len(self.logliks)), key=self.logliks.__getitem__)

    @property
    def normalised(self) -> tuple[float, ...]:
        return tuple(ll / n for ll, n in zip(self.logliks, self.lengths))


Batch = list[tuple[int, OptionScores]]


def encode_items(
    loaded: LoadedModel, items: Sequence[ScoringItem], *, virtual_tokens: int | None = None
) -> list[EncodedItem]:
    """Token ids of each item, its prompt cut to the model's input length. virtual_tokens: how many soft
    prompt tokens go in front of the input (they count against the limit); by default the loaded model's."""
    spec = loaded.spec
    prompt_format = FORMATS[spec.prompt_format]
    if virtual_tokens is None:
        virtual_tokens = loaded.virtual_tokens
    encoder = Encoder(
        loaded.tokenizer,
        family=loaded.family,
        add_special_tokens=prompt_format.adds_special_tokens,
        max_tokens=None if spec.max_input_tokens is None else spec.max_input_tokens - virtual_tokens,
        side=spec.truncation,
    )
    encoded = []
    for item in items:
        shared, rest = prompt_format.wrap(item.shared, item.rest, loaded.tokenizer)
        encoded.append(encoder.encode(shared, rest, list(item.options)))
    return encoded


def score(
    loaded: LoadedModel, items: Sequence[ScoringItem], config: ScoreConfig | None = None
) -> Iterator[Batch]:
    """Yield (item index, scores) per batch, so callers can store results as they come."""
    config = config or ScoreConfig()
    encoded = encode_items(loaded, items)
    backoff = Backoff(config.batch_size, loaded.device)
    yield from FAST_PATHS[loaded.family](loaded, encoded, backoff)


def _score_seq2seq(loaded: LoadedModel, encoded: list[EncodedItem], backoff: Backoff) -> Iterator[Batch]:
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i].rest_ids))
    yield from backoff.batches(order, lambda chunk: _seq2seq_batch(loaded, encoded, chunk))


def _score_causal(loaded: LoadedModel, encoded: list[EncodedItem], backoff: Backoff) -> Iterator[Batch]:
    groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for index, item in enumerate(encoded):
        groups[item.shared_ids].append(index)
    for shared_ids, members in groups.items():
        try:
            prefix = _causal_prefix(loaded, shared_ids)
        except Exception as exc:
            if is_out_of_memory(exc):  # the prefix is one row already: nothing left to back off to
                raise OutOfMemoryAtBatchSizeOne(backoff.message()) from exc
            raise
        members.sort(key=lambda i: -len(encoded[i].rest_ids))  # longest first: an OOM shows up at once
        yield from backoff.batches(members, lambda chunk: _causal_batch(loaded, encoded, chunk, prefix))


class Backoff:
    """Runs batches, halving the batch size on out-of-memory; the smaller size sticks for later batches."""

    def __init__(self, size: int, device: torch.device) -> None:
        self.size = size
        self.device = device

    def batches(self, order: list[int], run: Callable[[list[int]], Batch]) -> Iterator[Batch]:
        start = 0
        while start < len(order):
            chunk = order[start : start + self.size]
            try:
                result = run(chunk)
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
                if self.size == 1:
                    raise OutOfMemoryAtBatchSizeOne(self.message()) from exc
                self.size = max(1, self.size // 2)
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                continue
            yield result
            start += len(chunk)

    def message(self) -> str:
        return (
            f"Out of memory on {self.device} even at batch size 1; use a smaller model, a lower precision "
            "or a device with more memory."
        )


def with_soft_prompt(loaded: LoadedModel, ids: torch.Tensor, mask: torch.Tensor | None = None):
    """Input embeddings for `ids` with the loaded soft prompt's virtual tokens in front, and the mask widened
    to match (forward.prepend_virtual_tokens)."""
    embeds = loaded.model.get_input_embeddings()(ids)
    soft = loaded.soft_prompt.to(embeds.dtype).unsqueeze(0).expand(ids.shape[0], -1, -1)
    return prepend_virtual_tokens(soft, embeds, mask)


def _collect(encoded: list[EncodedItem], chunk: list[int], totals: list[list[float]]) -> Batch:
    return [(index, scores_of(encoded[index], totals[b])) for b, index in enumerate(chunk)]


def scores_of(item: EncodedItem, logliks: Sequence[float]) -> OptionScores:
    return OptionScores(tuple(logliks), tuple(len(o) for o in item.option_ids), item.truncated)


@torch.inference_mode()
def _seq2seq_batch(loaded: LoadedModel, encoded: list[EncodedItem], chunk: list[int]) -> Batch:
    from transformers.modeling_outputs import BaseModelOutput

    model, device = loaded.model, loaded.device
    pad_id = loaded.tokenizer.pad_token_id
    start_id = model.config.decoder_start_token_id
    input_ids, attention = pad([encoded[i].rest_ids for i in chunk], pad_id, device)
    # Phase 1: the encoder runs once per item (behind the soft prompt's virtual tokens, if there is one).
    if loaded.soft_prompt is None:
        hidden = model.get_encoder()(input_ids=input_ids, attention_mask=attention).last_hidden_state
    else:
        embeds, attention = with_soft_prompt(loaded, input_ids, attention)
        hidden = model.get_encoder()(inputs_embeds=embeds, attention_mask=attention).last_hidden_state
    options = [encoded[i].option_ids for i in chunk]

    # Phase 2: one decoder step from the start token gives every option's first token. It also fills the
    # decoder's cache, including the cross-attention keys and values of the encoder states.
    step = torch.full((len(chunk), 1), start_id, dtype=torch.long, device=device)
    out = model(
        encoder_outputs=BaseModelOutput(last_hidden_state=hidden),
        attention_mask=attention,
        decoder_input_ids=step,
        use_cache=True,
    )
    logits = out.logits[:, 0].float()
    first = logits - torch.logsumexp(logits, dim=-1, keepdim=True)
    totals = [[first[b, o[0]].item() for o in opts] for b, opts in enumerate(options)]

    # Phase 3, options longer than one token: one row per option continues from its item's cache, so the
    # cross-attention projections of the encoder states are computed once per item, not once per option.
    # Rows go in groups of similar length, so little of the work is padding.
    for group in length_groups(longer_options(options), len(chunk)):
        sums = continue_seq2seq(model, cache_of(out), hidden, attention, group, pad_id).tolist()
        for (b, j, _), total in zip(group, sums):
            totals[b][j] += total
    return _collect(encoded, chunk, totals)


@torch.inference_mode()
def _causal_prefix(
    loaded: LoadedModel, shared_ids: tuple[int, ...]
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The shared prefix's key/value states, computed once per phrasing (empty when nothing is shared).
    A soft prompt's virtual tokens come first, so they are part of every phrasing's prefix."""
    if not shared_ids and loaded.soft_prompt is None:
        return []
    ids = torch.tensor([shared_ids], dtype=torch.long, device=loaded.device)
    # Only the cache is needed: the backbone alone skips the output layer.
    backbone = loaded.model.base_model if plain_output_head(loaded.model) else loaded.model
    if loaded.soft_prompt is None:
        cache = cache_of(backbone(input_ids=ids, use_cache=True))
    else:
        cache = cache_of(backbone(inputs_embeds=with_soft_prompt(loaded, ids)[0], use_cache=True))
    return [(layer.keys, layer.values) for layer in cache.layers]


@torch.inference_mode()
def _causal_batch(
    loaded: LoadedModel,
    encoded: list[EncodedItem],
    chunk: list[int],
    prefix: list[tuple[torch.Tensor, torch.Tensor]],
) -> Batch:
    from transformers import DynamicCache

    model, device = loaded.model, loaded.device
    pad_id = loaded.tokenizer.pad_token_id
    size = len(chunk)
    shared_len = (
        prefix[0][0].shape[2] if prefix else 0
    )  # the shared tokens, and any virtual tokens before them

    # Phase 1: each item's own context, on top of the shared prefix (expanded, not copied, per row).
    cache = DynamicCache(
        [(k.expand(size, -1, -1, -1), v.expand(size, -1, -1, -1)) for k, v in prefix] or None,
        config=model.config,
    )
    rest_ids, rest_mask = pad([encoded[i].rest_ids for i in chunk], pad_id, device)
    positions = shared_len + torch.arange(rest_ids.shape[1], device=device).expand(size, -1)
    attention = torch.cat([torch.ones(size, shared_len, dtype=torch.long, device=device), rest_mask], dim=1)
    lengths = rest_mask.sum(dim=1)
    inputs = dict(input_ids=rest_ids, attention_mask=attention, position_ids=positions, **with_cache(cache))
    if plain_output_head(model):
        # Only each row's last position predicts anything we score: run the output layer (vocabulary-sized)
        # there alone, not at every context position.
        out = model.base_model(**inputs, use_cache=True)
        hidden = out.last_hidden_state[torch.arange(size, device=device), lengths - 1]
        last = model.get_output_embeddings()(hidden).float()
    else:
        out = model(**inputs, use_cache=True)
        last = out.logits[torch.arange(size, device=device), lengths - 1].float()
    first = last - torch.logsumexp(last, dim=-1, keepdim=True)
    options = [encoded[i].option_ids for i in chunk]
    totals = [[first[b, o[0]].item() for o in opts] for b, opts in enumerate(options)]

    # Phase 2: options longer than one token continue from the context's cache, one row per option, in
    # groups of similar length so that little of the work is padding.
    for group in length_groups(longer_options(options), size):
        sums = continue_causal(model, cache_of(out), attention, group, pad_id).tolist()
        for (b, j, _), total in zip(group, sums):
            totals[b][j] += total
    return _collect(encoded, chunk, totals)


# The fast path of each family (families.py): how its items are ordered, batched and scored.
FAST_PATHS = {SEQ2SEQ: _score_seq2seq, CAUSAL: _score_causal}
