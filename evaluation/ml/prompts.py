"""Prompt formats: how a rendered phrasing is wrapped before the model reads it.

A prompt travels as two strings: `shared`, the text every instance of a phrasing starts with (the
format's header plus the phrasing's text before its first placeholder), and `rest`, the remainder for one
instance. The causal fast path computes `shared` once per phrasing and reuses its key/value cache.
"""

from __future__ import annotations

from typing import Any

ALPACA_HEADER = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the request."
    "\n\n### Instruction:\n"
)
ALPACA_FOOTER = "\n\n### Response:\n"
_SENTINEL = "\x00PHRASEBENCH-PROMPT\x00"


def wrap(shared: str, rest: str, prompt_format: str, tokenizer: Any = None) -> tuple[str, str]:
    """Wrap one instance's prompt in the model's format, keeping the shared part shared."""
    if prompt_format == "none":
        return shared, rest
    if prompt_format == "alpaca":
        # Our phrasings render to one text, so we use Alpaca's no-input variant (see README, "Prompt formats").
        return ALPACA_HEADER + shared, rest + ALPACA_FOOTER
    if prompt_format == "chat":
        head, tail = chat_frame(tokenizer)
        return head + shared, rest + tail
    raise ValueError(f"Unknown prompt format {prompt_format!r}.")


def chat_frame(tokenizer: Any) -> tuple[str, str]:
    """The chat template's text before and after a single user message, with the generation prompt."""
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("The tokenizer has no chat template; choose the 'none' or 'alpaca' prompt format.")
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": _SENTINEL}], tokenize=False, add_generation_prompt=True
    )
    head, _, tail = text.partition(_SENTINEL)
    return head, tail


def adds_special_tokens(prompt_format: str) -> bool:
    # A chat template writes the BOS token into its text already; tokenizing it again would double it.
    return prompt_format != "chat"
