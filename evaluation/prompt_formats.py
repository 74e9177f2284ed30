"""A registered model's prompt format as the authoring preview applies it: the same wrapper the scorer uses
(evaluation/ml/prompts.py), handed to collection's preview as a plain function.

The preview runs in the web process, which never loads a model: a chat template is rendered from the text
the model check stored (LanguageModel.chat_template), in jinja2's sandbox, with no tokenizer, no file and no
network. A model whose template is not stored (still checking, or it does not load) previews unwrapped."""

from __future__ import annotations

from collections.abc import Callable

from evaluation.ml import prompts
from evaluation.models import LanguageModel

Wrap = Callable[[str, str], tuple[str, str]]


def _bare(shared: str, rest: str) -> tuple[str, str]:
    return shared, rest


def preview_wrapper(model: LanguageModel | None) -> tuple[Wrap, str, str]:
    """(wrap, format name, note) for `model`'s prompt format; the bare text when no model is chosen or its
    chat template cannot be applied here (the note says why)."""
    if model is None:
        return _bare, "none", ""
    fmt = prompts.FORMATS[model.prompt_format]
    if not fmt.uses_chat_template:
        return (lambda shared, rest: fmt.wrap(shared, rest, None)), fmt.name, ""
    if model.state == LanguageModel.State.CHECKING:
        return (
            _bare,
            "none",
            f"{model.name}'s chat template is known once a worker has checked the model; shown unwrapped.",
        )
    if model.state == LanguageModel.State.FAILED:
        return (
            _bare,
            "none",
            f"{model.name} did not load, so its chat template is not known; shown unwrapped.",
        )
    if not model.chat_template:
        # Registered before checks stored templates: an admin's "Check again" stores it.
        return _bare, "none", f"{model.name}'s chat template has not been stored yet; shown unwrapped."
    try:
        wrap = prompts.chat_wrap_from_template(model.chat_template, model.special_tokens or {})
    except prompts.ChatTemplateError as exc:
        return _bare, "none", f"{model.name}'s chat template cannot be applied ({exc}); shown unwrapped."
    return wrap, fmt.name, ""
