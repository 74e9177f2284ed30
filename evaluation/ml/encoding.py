"""Turn (shared, rest, options) into token ids. One convention for the fast paths and the naive reference,
so both compute log p(option | prompt) over exactly the same ids.

- Whitespace at the end of the prompt moves to the start of each option; otherwise options are preceded by
  one space (as lm-evaluation-harness does), so "Answer:" + " A" tokenizes like running text.
- causal: ids = tokens(shared, with the tokenizer's BOS) + tokens(rest) + tokens(option). The prompt is
  tokenized in two pieces so the shared piece's cache can be reused; `split_lead` in the service cuts the
  phrasing before a whitespace run, where BPE tokenizers start a new word anyway.
- seq2seq: the encoder reads tokens(shared + rest) with the tokenizer's special tokens (T5 appends </s>);
  the decoder scores tokens(option) with no EOS, so a letter is one token and takes one decoder step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class EncodedItem:
    shared_ids: tuple[int, ...]  # causal only: the reusable prefix; empty for seq2seq
    rest_ids: list[int]  # causal: the instance's part; seq2seq: the whole encoder input
    option_ids: list[list[int]]


class Encoder:
    """Tokenizes items, remembering strings that repeat (shared prefixes, option words)."""

    def __init__(self, tokenizer: Any, *, seq2seq: bool, add_special_tokens: bool = True) -> None:
        self.tokenizer = tokenizer
        self.seq2seq = seq2seq
        self.add_special_tokens = add_special_tokens
        self._memo: dict[tuple[str, bool], list[int]] = {}

    def ids(self, text: str, special: bool) -> list[int]:
        key = (text, special)
        if key not in self._memo:
            self._memo[key] = self.tokenizer(text, add_special_tokens=special)["input_ids"]
        return self._memo[key]

    def encode(self, shared: str, rest: str, options: list[str]) -> EncodedItem:
        prompt = shared + rest
        context = prompt.rstrip()
        delimiter = prompt[len(context) :] or " "
        shared, rest = context[: len(shared)], context[len(shared) :]
        if self.seq2seq:
            encoder_ids = self.tokenizer(context, add_special_tokens=self.add_special_tokens)["input_ids"]
            # The decoder starts a fresh sequence: no delimiter before the option.
            return EncodedItem((), encoder_ids, [self.ids(option, False) for option in options])
        # Even an empty shared part carries the BOS token for tokenizers that add one.
        shared_ids = list(self.ids(shared, self.add_special_tokens))
        rest_ids = self.tokenizer(rest, add_special_tokens=False)["input_ids"] if rest else []
        if not rest_ids:
            # The option's first token is predicted from the last prompt position, which must be computed
            # per item; borrow the shared part's last token.
            shared_ids, rest_ids = shared_ids[:-1], shared_ids[-1:]
        if not rest_ids:
            raise ValueError("The prompt is empty.")
        return EncodedItem(
            tuple(shared_ids), rest_ids, [self.ids(delimiter + option, False) for option in options]
        )
