"""A registered model's prompt format as the authoring preview applies it: the same wrapper the scorer uses
(evaluation/ml/prompts.py), handed to collection's preview as a plain function."""

from __future__ import annotations

import functools
from collections.abc import Callable

from evaluation.ml import prompts
from evaluation.models import LanguageModel


def preview_wrapper(model: LanguageModel | None) -> tuple[Callable[[str, str], tuple[str, str]], str, str]:
    """(wrap, format name, note) for `model`'s prompt format; the bare text when no model is chosen or its
    chat template cannot be loaded here (the note says why)."""
    if model is None or model.prompt_format == "none":
        return (lambda shared, rest: (shared, rest)), "none", ""
    tokenizer = None
    if model.prompt_format == "chat":
        tokenizer, problem = _chat_tokenizer(model.source, model.revision)
        if tokenizer is None:
            note = f"{model.name}'s chat template could not be loaded ({problem}); shown unwrapped."
            return (lambda shared, rest: (shared, rest)), "none", note
    fmt = model.prompt_format
    return (lambda shared, rest: prompts.wrap(shared, rest, fmt, tokenizer)), fmt, ""


@functools.lru_cache(maxsize=4)
def _chat_tokenizer(source: str, revision: str):
    """A chat model's tokenizer, for its chat template; (None, reason) when it cannot be loaded here."""
    import transformers

    try:
        kwargs = {"revision": revision} if revision else {}
        tokenizer = transformers.AutoTokenizer.from_pretrained(source, **kwargs)
        prompts.chat_frame(tokenizer)
    except (OSError, ValueError) as exc:
        return None, str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return tokenizer, ""
