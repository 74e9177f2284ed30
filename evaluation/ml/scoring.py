"""Rank classification, fast: score every option of every item by log-likelihood and predict the argmax.

The fast paths share work that the naive reference (reference.py) repeats, and tests prove both give the
same log-likelihoods to 1e-4:
- seq2seq: one encoder pass per item; one decoder step scores every option's first token (all of a letter
  or yes/no label space); longer options continue from that step's cache, so the cross-attention keys and
  values of the encoder states are computed once per item, not once per option.
- causal: the shared prefix of a phrasing is run once and its key/value cache reused by every instance;
  the options' first tokens are read from the context pass, and only longer options need a second pass,
  which reuses the context's cache instead of recomputing it.
Items are sorted by length so batches carry little padding. A batch is a fixed number of items (on the CPU,
or when a batch size is given) or as many as fit a budget of tokens (on a GPU), the budget found per model,
device and dtype by growing it until memory runs out (TokenBudget); either way a batch that runs out of
memory is retried smaller.
Host work per batch is small: every option's log-likelihood is gathered on the device and comes back in one
transfer, and the next batch is launched before the host waits for it, so the host pads and launches it while
the device still works on the one before. On a GPU the transfer is queued behind its own batch into pinned
memory and waited for by an event, so that waiting for batch k does not also wait for batch k + 1.
A prompt cut to the model's input length (encoding.py) is scored like any other: the causal path shares
only what is left of its phrasing's prefix, often nothing but the BOS token.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

import torch

from evaluation.ml.compat import cache_of, with_cache
from evaluation.ml.config import DEFAULT_BATCH_SIZE, ConfigError, ScoreConfig
from evaluation.ml.encoding import EncodedItem, shared_encoder
from evaluation.ml.errors import OutOfMemoryAtBatchSizeOne
from evaluation.ml.families import CAUSAL, SEQ2SEQ
from evaluation.ml.forward import (
    OptionRow,
    continue_causal,
    continue_seq2seq,
    is_out_of_memory,
    length_groups,
    longer_options,
    plain_output_head,
    prepend_virtual_tokens,
)
from evaluation.ml.items import Batch, OptionScores, ScoringItem
from evaluation.ml.loading import LoadedModel
from evaluation.ml.logprobs import pad, to_device
from evaluation.ml.prompts import FORMATS


def encode_items(
    loaded: LoadedModel, items: Sequence[ScoringItem], *, virtual_tokens: int | None = None
) -> list[EncodedItem]:
    """Token ids of each item, its prompt cut to the model's input length. virtual_tokens: how many soft
    prompt tokens go in front of the input (they count against the limit); by default the loaded model's."""
    spec = loaded.spec
    prompt_format = FORMATS[spec.prompt_format]
    if virtual_tokens is None:
        virtual_tokens = loaded.virtual_tokens
    encoder = shared_encoder(
        loaded.tokenizer,
        family=loaded.family,
        add_special_tokens=prompt_format.adds_special_tokens,
        max_tokens=None if spec.max_input_tokens is None else spec.max_input_tokens - virtual_tokens,
        side=spec.truncation,
    )
    wrapped = []
    for item in items:
        shared, rest = prompt_format.wrap(item.shared, item.rest, loaded.tokenizer)
        wrapped.append((shared, rest, tuple(item.options)))
    return encoder.encode_many(wrapped)


@dataclass
class BatchStats:
    """What one score() call did, for reports: its batches and the tokens they held (batch_tokens)."""

    batching: str = ""  # count or tokens
    batches: int = 0
    items: int = 0
    largest_batch: int = 0  # items
    tokens: int = 0  # the tokens the batches held
    padded_tokens: int = 0  # the same with padding
    out_of_memory: int = 0  # batches that ran out of memory and were retried smaller
    token_budget: int | None = None  # tokens batching: the budget the last batch was filled to

    @property
    def padding_share(self) -> float:
        return 1 - self.tokens / self.padded_tokens if self.padded_tokens else 0.0


def score(
    loaded: LoadedModel,
    items: Sequence[ScoringItem],
    config: ScoreConfig | None = None,
    *,
    stats: BatchStats | None = None,
) -> Iterator[Batch]:
    """Yield (item index, scores) per batch, so callers can store results as they come. stats, if given, is
    filled in as batches run."""
    config = config or ScoreConfig()
    encoded = encode_items(loaded, items)
    batcher = Batcher(loaded, encoded, config, stats if stats is not None else BatchStats())
    yield from FAST_PATHS[loaded.family](loaded, encoded, batcher)


def _score_seq2seq(loaded: LoadedModel, encoded: list[EncodedItem], batcher: Batcher) -> Iterator[Batch]:
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i].rest_ids))
    yield from batcher.batches(order, lambda chunk: _seq2seq_batch(loaded, encoded, chunk))


def _score_causal(loaded: LoadedModel, encoded: list[EncodedItem], batcher: Batcher) -> Iterator[Batch]:
    groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for index, item in enumerate(encoded):
        groups[item.shared_ids].append(index)
    for shared_ids, members in groups.items():
        try:
            prefix = _causal_prefix(loaded, shared_ids)
            kept = min((keys.shape[2] for keys, _ in prefix), default=0) - loaded.virtual_tokens
            if kept < 0:
                raise ConfigError(
                    f"The soft prompt's {loaded.virtual_tokens} virtual tokens do not fit the model's attention "
                    f"window ({kept + loaded.virtual_tokens} tokens kept): train one with fewer."
                )
            if kept < len(shared_ids):
                # A sliding-window layer keeps only its window's last keys: share no more of the prefix than
                # every layer holds, and read the rest of it with each instance.
                shared_ids = shared_ids[: max(kept, 0)]
                for index in members:
                    item = encoded[index]
                    moved = list(item.shared_ids[len(shared_ids) :])
                    encoded[index] = replace(item, shared_ids=shared_ids, rest_ids=moved + item.rest_ids)
                prefix = _causal_prefix(loaded, shared_ids)
        except Exception as exc:
            if is_out_of_memory(exc):  # the prefix is one row already: nothing left to back off to
                raise OutOfMemoryAtBatchSizeOne(batcher.message()) from exc
            raise
        members.sort(key=lambda i: -len(encoded[i].rest_ids))  # longest first: an OOM shows up at once
        yield from batcher.batches(members, lambda chunk: _causal_batch(loaded, encoded, chunk, prefix))


def batch_tokens(encoded: list[EncodedItem], chunk: list[int], virtual_tokens: int = 0) -> tuple[int, int]:
    """(padded, real): the tokens a batch holds as key/value states, which is what its memory grows with.
    Each item's context (virtual tokens, shared part and rest; the encoder input for seq2seq) is held once
    for its first-token step and once more per option longer than one token, whose row continues from a
    copy of its item's cache; those options add their own tokens after the first. Padded: every context as
    wide as the batch's widest, every option row as long as its longest."""
    tally = _Tally(virtual_tokens)
    for index in chunk:
        tally.add(encoded[index])
    return tally.padded, tally.real


class _Tally:
    """batch_tokens, one item at a time."""

    def __init__(self, virtual_tokens: int) -> None:
        self.virtual_tokens = virtual_tokens
        self.rows = self.longer = self.width = self.longest = self.real = 0

    def add(self, item: EncodedItem) -> None:
        own = self.virtual_tokens + len(item.shared_ids) + len(item.rest_ids)
        options = [len(o) - 1 for o in item.option_ids if len(o) > 1]
        self.rows += 1 + len(options)
        self.longer += len(options)
        self.width = max(self.width, own)
        self.longest = max([self.longest, *options])
        self.real += (1 + len(options)) * own + sum(options)

    @property
    def padded(self) -> int:
        return self.rows * self.width + self.longer * self.longest


# Token budgets (ScoreConfig.batching == "tokens" with no budget given): where the search starts, how close
# the largest batch that ran and the smallest that ran out of memory must come before the search stops, and
# the margin kept below the largest that ran, since batches of the same padded size differ in shape (more
# option rows, longer contexts) and so in memory.
START_TOKENS = 4096
RESOLUTION = 0.25
MARGIN = 0.8


@dataclass
class TokenBudget:
    """How many padded tokens (batch_tokens) a batch may hold. A found budget (find=True) grows while batches
    run, doubling until one runs out of memory, then bisects between the largest batch that ran and the
    smallest that did not, and settles MARGIN below the largest that ran once the two are within RESOLUTION
    of each other; one that runs out of memory later moves it down again. Where a few long items fill the
    memory, no batch of them falls between the two (two ran, three did not): the budget then stays between
    them, where such batches hold as many as ran and run out of memory no more, without being `found`
    (settling below would cost a whole item a batch). A given budget only halves on out of memory."""

    tokens: int
    find: bool = False
    fits: int = 0  # the largest batch that ran, in padded tokens
    fails: int | None = None  # the smallest that ran out of memory

    @property
    def found(self) -> bool:
        return self.fails is not None and self.fails <= self.fits * (1 + RESOLUTION)

    def ran(self, cost: int) -> None:
        self.fits = max(self.fits, cost)
        if self.find:
            self.tokens = self._next()

    def ran_out(self, cost: int) -> None:
        if not self.find:
            self.tokens = max(1, min(self.tokens, cost) // 2)
            return
        self.fails = cost if self.fails is None else min(self.fails, cost)
        if self.fits >= cost:  # a batch no larger than one that ran did not: trust half of it
            self.fits = cost // 2
        self.tokens = self._next()

    def _next(self) -> int:
        if self.fails is None:  # memory has not said no yet: grow, once batches fill the budget
            return max(self.tokens, 2 * self.fits)
        if not self.found:
            return (self.fits + self.fails) // 2
        return max(1, int(self.fits * MARGIN))


# Found budgets, per (model as loaded, device, dtype): a worker keeps its model warm, and every run on it
# starts from what the ones before found.
_budgets: dict[tuple, TokenBudget] = {}


def token_budget_for(loaded: LoadedModel) -> TokenBudget:
    """The remembered budget of this model on its device in its dtype (a new one, START_TOKENS, at first)."""
    key = (loaded.spec.for_loading(), str(loaded.device), str(loaded.dtype))
    if key not in _budgets:
        _budgets[key] = TokenBudget(START_TOKENS, find=True)
    return _budgets[key]


def forget_token_budgets() -> None:
    _budgets.clear()


class Batcher:
    """Cuts length-sorted items into batches (a fixed count, or to a token budget) and runs them, retrying a
    batch that runs out of memory smaller (a smaller count or budget sticks for later batches), and failing
    readably when a single item does not fit."""

    def __init__(
        self, loaded: LoadedModel, encoded: list[EncodedItem], config: ScoreConfig, stats: BatchStats
    ) -> None:
        self.device = loaded.device
        self.encoded = encoded
        self.virtual_tokens = loaded.virtual_tokens
        self.stats = stats
        stats.batching = config.batching_on(loaded.device.type)
        self.size = config.batch_size or DEFAULT_BATCH_SIZE  # count batching
        self.budget: TokenBudget | None = None
        if stats.batching == "tokens":
            given = config.token_budget
            self.budget = TokenBudget(given) if given is not None else token_budget_for(loaded)

    def batches(self, order: list[int], run: Callable[[list[int]], Callable[[], Batch]]) -> Iterator[Batch]:
        """run(chunk) launches a batch and returns what finishes it (the transfer to the host). Batch k is
        finished only once batch k + 1 is launched, so the device is never idle while the host works."""
        start, pending = 0, None
        while start < len(order):
            chunk = self._take(order, start)
            padded, real = batch_tokens(self.encoded, chunk, self.virtual_tokens)
            try:
                finish = run(chunk)
                out_of_memory = False
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
                if len(chunk) == 1:
                    raise OutOfMemoryAtBatchSizeOne(self.message()) from exc
                out_of_memory = True
            if out_of_memory:
                # Outside the except block: the exception's frames, which hold the batch's tensors, are gone.
                self._ran_out(padded)
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                continue
            self._ran(chunk, padded, real)
            if pending is not None:
                yield pending()
            pending = finish
            start += len(chunk)
        if pending is not None:
            yield pending()

    def _take(self, order: list[int], start: int) -> list[int]:
        if self.budget is None:
            return order[start : start + self.size]
        tally = _Tally(self.virtual_tokens)
        tally.add(self.encoded[order[start]])  # one item at least, whatever the budget
        end = start + 1
        while end < len(order):
            tally.add(self.encoded[order[end]])
            if tally.padded > self.budget.tokens:
                break
            end += 1
        return order[start:end]

    def _ran(self, chunk: list[int], padded: int, real: int) -> None:
        stats = self.stats
        stats.batches += 1
        stats.items += len(chunk)
        stats.largest_batch = max(stats.largest_batch, len(chunk))
        stats.tokens += real
        stats.padded_tokens += padded
        if self.budget is not None:
            stats.token_budget = self.budget.tokens
            self.budget.ran(padded)

    def _ran_out(self, padded: int) -> None:
        self.stats.out_of_memory += 1
        if self.budget is None:
            self.size = max(1, self.size // 2)
        else:
            self.budget.ran_out(padded)

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


def _gather_first(first: torch.Tensor, options: list[list[list[int]]]) -> torch.Tensor:
    """Every option's first-token log-probability, item by item and option by option, gathered on the device
    from (items, vocabulary) log-probabilities."""
    index = torch.tensor([(b, o[0]) for b, opts in enumerate(options) for o in opts], dtype=torch.long)
    index = to_device(index, first.device)
    return first[index[:, 0], index[:, 1]]


def _finisher(
    encoded: list[EncodedItem],
    chunk: list[int],
    firsts: torch.Tensor,
    groups: list[list[OptionRow]],
    sums: list[torch.Tensor],
) -> Callable[[], Batch]:
    """What finishes a launched batch: one transfer of its first-token log-probabilities and the summed
    log-probabilities of the longer options' other tokens (group by group), then each option's total, added
    on the host in double precision as the values come (first token, then the rest)."""
    values = torch.cat([firsts, *sums]) if sums else firsts
    done = None
    if values.device.type == "cuda":
        # Queued now, behind this batch's own work, into pinned memory, and waited for by an event: a plain
        # .tolist() at finish() would queue behind the next batch too (launched by then) and wait for it,
        # leaving the device idle while the host went on to the batch after.
        host = torch.empty(values.shape, dtype=values.dtype, pin_memory=True)
        host.copy_(values, non_blocking=True)  # on the stream of values' device, as the event below
        done = torch.cuda.Event()
        done.record(torch.cuda.current_stream(values.device))
        values = host

    def finish() -> Batch:
        if done is not None:
            done.synchronize()
        flat = values.tolist()  # the batch's one device-to-host transfer (on a GPU, its wait)
        options = [encoded[i].option_ids for i in chunk]
        at = iter(flat)
        totals = [[next(at) for _ in opts] for opts in options]
        for group in groups:
            for (b, j, _), total in zip(group, at):
                totals[b][j] += total
        return [(index, scores_of(encoded[index], totals[b])) for b, index in enumerate(chunk)]

    return finish


def scores_of(item: EncodedItem, logliks: Sequence[float]) -> OptionScores:
    return OptionScores(tuple(logliks), tuple(len(o) for o in item.option_ids), item.truncated)


@torch.inference_mode()
def _seq2seq_batch(loaded: LoadedModel, encoded: list[EncodedItem], chunk: list[int]) -> Callable[[], Batch]:
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
    firsts = _gather_first(first, options)

    # Phase 3, options longer than one token: one row per option continues from its item's cache, so the
    # cross-attention projections of the encoder states are computed once per item, not once per option.
    # Rows go in groups of similar length, so little of the work is padding. Nothing comes back to the host
    # until the batch is finished (_finisher).
    groups = length_groups(longer_options(options), len(chunk))
    sums = [continue_seq2seq(model, cache_of(out), hidden, attention, group, pad_id) for group in groups]
    return _finisher(encoded, chunk, firsts, groups, sums)


@torch.inference_mode()
def _causal_prefix(
    loaded: LoadedModel, shared_ids: tuple[int, ...]
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The shared prefix's key/value states, computed once per phrasing (empty when nothing is shared).
    A soft prompt's virtual tokens come first, so they are part of every phrasing's prefix."""
    if not shared_ids and loaded.soft_prompt is None:
        return []
    ids = to_device(torch.tensor([shared_ids], dtype=torch.long), loaded.device)
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
) -> Callable[[], Batch]:
    model, pad_id = loaded.model, loaded.tokenizer.pad_token_id
    # Phase 1: each item's own context, on top of the shared prefix.
    out, attention, last = _causal_context(loaded, encoded, chunk, prefix)
    first = last - torch.logsumexp(last, dim=-1, keepdim=True)
    options = [encoded[i].option_ids for i in chunk]
    firsts = _gather_first(first, options)

    # Phase 2: options longer than one token continue from the context's cache, one row per option, in
    # groups of similar length so that little of the work is padding. Nothing comes back to the host until
    # the batch is finished (_finisher).
    rows = longer_options(options)
    if rows and any(layer.keys.shape[2] < attention.shape[1] for layer in cache_of(out).layers):
        # A sliding-window layer kept only the context's last positions (padding, for a batch's shorter
        # rows), and transformers 5.0 does not continue from such a cache as a full pass reads: the longer
        # options are read whole, with their item's rest, on top of the shared prefix (the shapes say so;
        # nothing is synced).
        groups = [rows]
        sums = [_options_on_the_prefix(loaded, encoded, chunk, prefix, rows)]
    else:
        groups = length_groups(rows, len(chunk))
        sums = [continue_causal(model, cache_of(out), attention, group, pad_id) for group in groups]
    return _finisher(encoded, chunk, firsts, groups, sums)


def _options_on_the_prefix(
    loaded: LoadedModel,
    encoded: list[EncodedItem],
    chunk: list[int],
    prefix: list[tuple[torch.Tensor, torch.Tensor]],
    rows: list[OptionRow],
) -> torch.Tensor:
    """The summed log-likelihoods of each option row's tokens after its first, each row its item's rest and
    the option (but its last token) in one pass on top of the shared prefix."""
    device = loaded.device
    whole = [replace(encoded[chunk[b]], rest_ids=encoded[chunk[b]].rest_ids + o[:-1]) for b, _, o in rows]
    out, _, _ = _causal_context(loaded, whole, list(range(len(whole))), prefix)
    at_row, at_position, targets = [], [], []
    for row, (b, _, option) in enumerate(rows):
        start = len(encoded[chunk[b]].rest_ids)  # option token t is predicted at start + t - 1
        for t in range(1, len(option)):
            at_row.append(row)
            at_position.append(start + t - 1)
            targets.append(option[t])
    at_row_t, at_position_t, targets_t = (
        to_device(torch.tensor(v), device) for v in (at_row, at_position, targets)
    )
    if plain_output_head(loaded.model):
        hidden = out.last_hidden_state[at_row_t, at_position_t]
        logits = loaded.model.get_output_embeddings()(hidden).float()
    else:
        logits = out.logits[at_row_t, at_position_t].float()
    logprobs = torch.log_softmax(logits, dim=-1)[torch.arange(len(targets), device=device), targets_t]
    return torch.zeros(len(rows), device=device).index_add_(0, at_row_t, logprobs)


def _causal_context(
    loaded: LoadedModel,
    encoded: list[EncodedItem],
    chunk: list[int],
    prefix: list[tuple[torch.Tensor, torch.Tensor]],
):
    """The context pass of the items in `chunk` on top of the shared prefix (expanded, not copied, per row):
    its output (with the cache), the attention mask over prefix and rest, and each row's last logits."""
    from transformers import DynamicCache

    model, device = loaded.model, loaded.device
    size = len(chunk)
    shared_len = prefix[0][0].shape[2] if prefix else 0  # the shared tokens, and any virtual tokens before
    cache = DynamicCache(
        [(k.expand(size, -1, -1, -1), v.expand(size, -1, -1, -1)) for k, v in prefix] or None,
        config=model.config,
    )
    rest_ids, rest_mask = pad([encoded[i].rest_ids for i in chunk], loaded.tokenizer.pad_token_id, device)
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
    return out, attention, last


# The fast path of each family (families.py): how its items are ordered, batched and scored.
FAST_PATHS = {SEQ2SEQ: _score_seq2seq, CAUSAL: _score_causal}
