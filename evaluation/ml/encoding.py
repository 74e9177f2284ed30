"""Turn (shared, rest, options) into token ids. One convention for the fast paths, the naive reference and
soft-prompt training, so all of them compute log p(option | prompt) over exactly the same ids.

- Whitespace at the end of the prompt moves to the start of each option; otherwise options are preceded by
  one space (as lm-evaluation-harness does), so "Answer:" + " A" tokenizes like running text.
- causal: the model reads each option after the prompt exactly as the whole text tokenizes (with the
  tokenizer's BOS): every prompt + option is tokenized whole, and the ids all of them and the prompt alone
  share are the prompt; what follows in each is its option. The shared prefix (the phrasing's text before its
  first placeholder, whose cache every instance reuses) is as much of the prompt's ids as tokenizing that
  prefix alone gives too. Tokenizing the pieces apart is not the same: SentencePiece tokenizers (Llama-2,
  Alpaca, Mistral-7B) start each piece with a word marker, so a letter " A" became two tokens, and Llama-3's
  joins a line break to the punctuation before it (tests/evaluation/test_tokenizer_styles.py). Where a line
  break before the options joins the prompt's last token (Llama-3's ":\n"), that token is scored as part of
  each option, the same for all of them; lm-evaluation-harness drops it instead.
- seq2seq: the encoder reads tokens(shared + rest) with the tokenizer's special tokens (T5 appends </s>);
  the decoder scores tokens(option) with no EOS, so a letter is one token and takes one decoder step.
- Input length: a prompt longer than its budget (`Encoder.max_tokens`) loses text tokens from its start
  (keep_end) or its end (cut_end); special tokens at either end (Llama's <s>, T5's </s>) stay, as a
  tokenizer's own truncation keeps the ones it adds. Options are never cut: a causal model reads every
  option token but the last after the prompt, so the prompt's budget leaves room for the longest option.
"""

from __future__ import annotations

import functools
import hashlib
import json
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from evaluation.ml.config import ConfigError
from evaluation.ml.families import CAUSAL, SEQ2SEQ, Family


@dataclass(frozen=True)
class EncodedItem:
    shared_ids: tuple[int, ...]  # causal only: the reusable prefix; empty for seq2seq
    rest_ids: list[int]  # causal: the instance's part; seq2seq: the whole encoder input
    option_ids: list[list[int]]
    truncated: bool = False  # the prompt was longer than its budget and was cut


class Encoder:
    """Tokenizes items, remembering strings that repeat (shared prefixes, option words).

    max_tokens: the most tokens a prompt may take as the model reads it (for a causal model, with the
    longest option but its last token after it), or None; `side` says which end a longer prompt loses."""

    def __init__(
        self,
        tokenizer: Any,
        *,
        family: Family,
        add_special_tokens: bool = True,
        max_tokens: int | None = None,
        side: str = "keep_end",
    ) -> None:
        self.tokenizer = tokenizer
        self.family = family
        self.add_special_tokens = add_special_tokens
        self.max_tokens = max_tokens
        self.side = side
        # The unknown token is text the tokenizer could not read, not a marker it adds.
        self.special_ids = set(tokenizer.all_special_ids) - {tokenizer.unk_token_id}
        self._memo: dict[tuple[str, bool], list[int]] = {}
        self._items: OrderedDict[tuple[str, str, tuple[str, ...]], EncodedItem] = OrderedDict()

    def ids(self, text: str, special: bool) -> list[int]:
        key = (text, special)
        if key not in self._memo:
            if len(self._memo) >= ITEM_MEMO:  # a worker lives long: forget what it read long ago
                self._memo.clear()
            self._memo[key] = self.tokenizer(text, add_special_tokens=special)["input_ids"]
        return self._memo[key]

    def encode_many(self, items: list[tuple[str, str, tuple[str, ...]]]) -> list[EncodedItem]:
        """encode() of each (shared, rest, options), through this encoder's memo of whole items: an item that
        was encoded before (for this model or another with the same tokenizer and settings) is not tokenized
        again. The memo keeps the most recently used ITEM_MEMO items. The others are tokenized in one call,
        which a fast tokenizer spreads over its threads."""
        out: list[EncodedItem | None] = [None] * len(items)
        missing: dict[tuple[str, str, tuple[str, ...]], list[int]] = {}
        for index, key in enumerate(items):
            item = self._items.get(key)
            if item is None:
                missing.setdefault(key, []).append(index)
            else:
                self._items.move_to_end(key)
                out[index] = item
        for key, item in zip(missing, self._encode_all(list(missing)), strict=True):
            self._items[key] = item
            if len(self._items) > ITEM_MEMO:
                self._items.popitem(last=False)
            for index in missing[key]:
                out[index] = item
        return out

    def encode(self, shared: str, rest: str, options: list[str]) -> EncodedItem:
        return self._encode_all([(shared, rest, tuple(options))])[0]

    def _encode_all(self, items: list[tuple[str, str, tuple[str, ...]]]) -> list[EncodedItem]:
        prompts = []
        for shared, rest, options in items:
            prompt = shared + rest
            context = prompt.rstrip()
            delimiter = prompt[len(context) :] or " "
            prompts.append((context[: len(shared)], context, delimiter, list(options)))
        return ENCODINGS[self.family](self, prompts)

    def _tokenize(self, texts: list[str], special: bool) -> list[list[int]]:
        return self.tokenizer(texts, add_special_tokens=special)["input_ids"] if texts else []

    def _seq2seq(self, prompts: list[tuple[str, str, str, list[str]]]) -> list[EncodedItem]:
        out = []
        for (_, _, _, options), encoder_ids in zip(
            prompts,
            self._tokenize([context for _, context, _, _ in prompts], self.add_special_tokens),
            strict=True,
        ):
            encoder_ids, truncated = self.cut(encoder_ids, self.max_tokens)
            # The decoder starts a fresh sequence: no delimiter before the option.
            out.append(
                EncodedItem((), encoder_ids, [self.ids(option, False) for option in options], truncated)
            )
        return out

    def _causal(self, prompts: list[tuple[str, str, str, list[str]]]) -> list[EncodedItem]:
        out: list[EncodedItem | None] = [None] * len(prompts)
        whole = []
        for index, prompt in enumerate(prompts):
            if self.piecewise and _cut_before_whitespace(prompt[0], prompt[1]):
                out[index] = self._causal_pieces(*prompt)
            else:
                whole.append(index)
        for index, item in zip(whole, self._causal_whole([prompts[i] for i in whole]), strict=True):
            out[index] = item
        return out

    def _causal_whole(self, prompts: list[tuple[str, str, str, list[str]]]) -> list[EncodedItem]:
        texts = []
        for _, context, delimiter, options in prompts:
            texts += [context, *(context + delimiter + option for option in options)]
        ids = iter(self._strip_suffix(self._tokenize(texts, self.add_special_tokens)))
        out = []
        for shared, context, _, options in prompts:
            prompt_ids = next(ids)
            wholes = [next(ids) for _ in options]
            prompt_length = _common_length(prompt_ids, *wholes)
            option_ids = [whole[prompt_length:] for whole in wholes]
            for option, tokens in zip(options, option_ids, strict=True):
                if not tokens:
                    raise ValueError(f"The option {option!r} adds no token to the prompt {context!r}.")
            prompt_ids = prompt_ids[:prompt_length]
            # Even an empty shared part carries the BOS token for tokenizers that add one.
            shared_length = _common_length(prompt_ids, list(self.ids(shared, self.add_special_tokens)))
            out.append(self._causal_item(prompt_ids[:shared_length], prompt_ids[shared_length:], option_ids))
        return out

    def _causal_pieces(self, shared: str, context: str, delimiter: str, options: list[str]) -> EncodedItem:
        """The ids of a GPT-2-style tokenizer (`piecewise`), piece by piece: the same ids as the whole text's,
        with the shared prefix and the options' ids remembered, not tokenized again per instance."""
        rest = context[len(shared) :]
        shared_ids = list(self.ids(shared, self.add_special_tokens))
        rest_ids = self.tokenizer(rest, add_special_tokens=False)["input_ids"] if rest else []
        return self._causal_item(
            shared_ids, rest_ids, [self.ids(delimiter + option, False) for option in options]
        )

    def _causal_item(
        self, shared_ids: list[int], rest_ids: list[int], option_ids: list[list[int]]
    ) -> EncodedItem:
        truncated = False
        if self.max_tokens is not None:
            budget = self.max_tokens - max((len(o) for o in option_ids), default=1) + 1
            prompt_ids, truncated = self.cut(shared_ids + rest_ids, budget)
            if truncated:
                shared_ids, rest_ids = _split_shared(prompt_ids, shared_ids)
        if not rest_ids:
            # The option's first token is predicted from the last prompt position, which must be computed
            # per item; borrow the shared part's last token.
            shared_ids, rest_ids = shared_ids[:-1], shared_ids[-1:]
        if not rest_ids:
            raise ValueError("The prompt is empty.")
        return EncodedItem(tuple(shared_ids), rest_ids, option_ids, truncated)

    @functools.cached_property
    def piecewise(self) -> bool:
        """Whether tokenizing a prompt in pieces cut between a word and the whitespace after it gives the
        whole text's ids: GPT-2's byte-level pipeline (no normaliser, GPT-2's split pattern, no prefix space
        added) always splits a text there and never looks back across the cut; added tokens that swallow the
        spaces beside them, or a token appended to every text, would break it. Every other tokenizer, and a
        cut elsewhere (a format's header ending in a blank line before a phrasing's placeholder: GPT-2 takes
        "\n\n" whole at a text's end, as two tokens before a word), is tokenized whole."""
        return _splits_like_gpt2(self.tokenizer) and not self.suffix_length

    @functools.cached_property
    def added_ids(self) -> tuple[list[int], int]:
        """The ids the tokenizer puts before every text (a BOS), and how many it appends after (an EOS, for
        the few causal tokenizers that add one). Found by where a probe's own ids sit among them, not by which
        ids are special: OPT's BOS is also its unknown token."""
        plain = self.tokenizer("a", add_special_tokens=False)["input_ids"]
        full = self.tokenizer("a", add_special_tokens=self.add_special_tokens)["input_ids"]
        for start in range(len(full) - len(plain) + 1):
            if full[start : start + len(plain)] == plain:
                return full[:start], len(full) - start - len(plain)
        return [], 0

    @property
    def suffix_length(self) -> int:
        return self.added_ids[1]

    def _strip_suffix(self, tokenized: list[list[int]]) -> list[list[int]]:
        """Each text's ids without the tokens appended to every text: an option is scored as the text goes
        on, not as it ends."""
        if not self.suffix_length:
            return tokenized
        return [ids[: len(ids) - self.suffix_length] for ids in tokenized]

    def cut(self, ids: list[int], budget: int | None) -> tuple[list[int], bool]:
        """`ids` cut to `budget` tokens on this encoder's side, keeping special tokens at either end (and the
        tokens the tokenizer puts before every text, special or not); and whether anything was cut."""
        if budget is None or len(ids) <= budget:
            return ids, False
        lead = self.added_ids[0]
        head = max(_run_length(ids, self.special_ids), len(lead) if ids[: len(lead)] == lead else 0)
        tail = _run_length(ids[head:][::-1], self.special_ids)
        room = budget - head - tail
        if room < 1:
            raise ConfigError(
                f"max_input_tokens: the limit leaves {budget} token(s) for a prompt (after any soft prompt's "
                "virtual tokens and the longest option), no room for its text beside its special tokens; "
                "raise the limit."
            )
        body = ids[head : len(ids) - tail]
        body = body[len(body) - room :] if self.side == "keep_end" else body[:room]
        return ids[:head] + body + ids[len(ids) - tail :], True


# How each family's prompt becomes token ids (families.py).
ENCODINGS = {SEQ2SEQ: Encoder._seq2seq, CAUSAL: Encoder._causal}

# Tokenization is done once per item and reused by every model whose tokenizer gives the same ids (the base
# model and its chat or soft-prompt variants, a family of models sharing one vocabulary): encoders are kept
# per (tokenizer's content, settings), at most ENCODERS of them, each remembering ITEM_MEMO items. An item's
# ids are a few hundred small ints, so the memo stays in the tens of megabytes.
ENCODERS = 4
ITEM_MEMO = 20_000
_encoders: OrderedDict[tuple, Encoder] = OrderedDict()
_fingerprints: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def shared_encoder(
    tokenizer: Any, *, family: Family, add_special_tokens: bool, max_tokens: int | None, side: str
) -> Encoder:
    """An Encoder for these settings, shared with every earlier call whose tokenizer has the same content;
    a new one for a tokenizer whose content cannot be read (a slow, Python tokenizer)."""
    fingerprint = tokenizer_fingerprint(tokenizer)
    settings = dict(family=family, add_special_tokens=add_special_tokens, max_tokens=max_tokens, side=side)
    if fingerprint is None:
        return Encoder(tokenizer, **settings)
    key = (fingerprint, family.name, add_special_tokens, max_tokens, side)
    encoder = _encoders.get(key)
    if encoder is None:
        encoder = _encoders[key] = Encoder(tokenizer, **settings)
        if len(_encoders) > ENCODERS:
            _encoders.popitem(last=False)
    else:
        _encoders.move_to_end(key)
    return encoder


def forget_encoders() -> None:
    """Drop every shared encoder and what it remembers (benchmarks that time tokenization call it)."""
    _encoders.clear()


def tokenizer_fingerprint(tokenizer: Any) -> str | None:
    """A digest of everything that decides a fast tokenizer's ids: its serialised pipeline (normaliser,
    pre-tokeniser, vocabulary and merges, the post-processor that adds BOS/EOS, added tokens) and its special
    tokens. None for a tokenizer without a Rust backend. Computed once per tokenizer object."""
    try:
        return _fingerprints[tokenizer]
    except (KeyError, TypeError):
        pass
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    digest = hashlib.sha256(backend.to_str().encode())
    digest.update(repr((sorted(tokenizer.all_special_ids), tokenizer.unk_token_id)).encode())
    fingerprint = digest.hexdigest()
    try:
        _fingerprints[tokenizer] = fingerprint
    except TypeError:  # not weakly referable: computed again next time
        pass
    return fingerprint


def _cut_before_whitespace(shared: str, context: str) -> bool:
    """Whether the prompt is cut into shared part and rest between a non-space character and a space (or
    not cut at all); the options always follow the rstripped prompt after whitespace."""
    rest = context[len(shared) :]
    return not shared or not rest or (not shared[-1].isspace() and rest[0].isspace())


def _splits_like_gpt2(tokenizer: Any) -> bool:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return False
    state = json.loads(backend.to_str())
    steps = state.get("pre_tokenizer") or {}
    steps = steps.get("pretokenizers", []) if steps.get("type") == "Sequence" else [steps]
    byte_level = [step for step in steps if step.get("type") == "ByteLevel"]
    return (
        state.get("normalizer") is None
        and len(byte_level) == 1
        and byte_level[0].get("use_regex", True)
        and not byte_level[0].get("add_prefix_space")
        and all(step is byte_level[0] or _splits_digits(step) for step in steps)
        and not any(token.get("lstrip") or token.get("rstrip") for token in state.get("added_tokens", []))
    )


def _splits_digits(step: dict) -> bool:
    return step.get("type") == "Digits" and step.get("individual_digits", False)


def _common_length(first: list[int], *others: list[int]) -> int:
    """How many ids at the start `first` shares with every one of `others`."""
    length = len(first)
    for other in others:
        length = min(length, len(other))
        if other[:length] == first[:length]:  # the usual case, compared at C speed
            continue
        length = next(at for at in range(length) if first[at] != other[at])
    return length


def _run_length(ids: list[int], members: set[int]) -> int:
    """How many of the first ids are members."""
    count = 0
    while count < len(ids) and ids[count] in members:
        count += 1
    return count


def _split_shared(prompt_ids: list[int], shared_ids: list[int]) -> tuple[list[int], list[int]]:
    """A cut prompt split into (shared, rest) again: the shared part is what is left of the phrasing's shared
    prefix at the prompt's start (its cached states are those of the same tokens at the same positions);
    keep_end usually leaves only the BOS token of it."""
    common = _common_length(prompt_ids, list(shared_ids))
    return prompt_ids[:common], prompt_ids[common:]
