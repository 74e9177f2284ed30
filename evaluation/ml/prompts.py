"""Prompt formats: how a rendered phrasing is wrapped before the model reads it.

A prompt travels as two strings: `shared`, the text every instance of a phrasing starts with (the
format's header plus the phrasing's text before its first placeholder), and `rest`, the remainder for one
instance. The causal fast path computes `shared` once per phrasing and reuses its key/value cache.

FORMATS is the one list of formats: ModelSpec accepts its names and the registry's choices are built from it
(evaluation/models.py). Adding a format: its wrapper and its entry in FORMATS, and a test of what it builds.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.exceptions import SecurityError
from jinja2.ext import Extension, loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

# Alpaca's two prompts (tatsu-lab/stanford_alpaca, PROMPT_DICT): with an input block, and without one. A
# phrasing written in Alpaca's layout marks its input with ALPACA_INPUT; any other is an instruction alone.
ALPACA_HEADER = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the request."
    "\n\n### Instruction:\n"
)
ALPACA_INPUT_HEADER = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n### Instruction:\n"
)
ALPACA_INPUT = "\n\n### Input:\n"
ALPACA_FOOTER = "\n\n### Response:"
_SENTINEL = "\x00PHRASEBENCH-PROMPT\x00"


@dataclass(frozen=True)
class PromptFormat:
    name: str  # as stored on LanguageModel.prompt_format and ModelSpec.prompt_format
    label: str  # as the registry shows it
    # (shared, rest, tokenizer) -> (shared, rest) wrapped, the shared part kept shared. Only a format that
    # uses the chat template reads the tokenizer; the others take None.
    wrap: Callable[[str, str, Any], tuple[str, str]]
    adds_special_tokens: bool = True  # tokenize the wrapped prompt with the tokenizer's BOS/EOS
    # Frames the prompt with the tokenizer's chat template, which the web process knows only as the text the
    # model check stored (evaluation/prompt_formats.py renders that instead).
    uses_chat_template: bool = False


def _as_written(shared: str, rest: str, tokenizer: Any) -> tuple[str, str]:
    return shared, rest


def _alpaca(shared: str, rest: str, tokenizer: Any) -> tuple[str, str]:
    # With an input block, Alpaca's with-input prompt (the study's Alpaca phrasings); otherwise the no-input
    # one (see README, "Phrasing templates").
    header = ALPACA_INPUT_HEADER if ALPACA_INPUT in shared + rest else ALPACA_HEADER
    return header + shared, rest + ALPACA_FOOTER


def _chat(shared: str, rest: str, tokenizer: Any) -> tuple[str, str]:
    return chat_wrap(tokenizer)(shared, rest)


FORMATS = {
    fmt.name: fmt
    for fmt in (
        PromptFormat("none", "None (the phrasing as written)", _as_written),
        PromptFormat("alpaca", "Alpaca-style wrapper", _alpaca),
        # A chat template writes the BOS token into its text already; tokenizing it again would double it.
        PromptFormat(
            "chat", "The tokenizer's chat template", _chat, adds_special_tokens=False, uses_chat_template=True
        ),
    )
}


def wrap(shared: str, rest: str, prompt_format: str, tokenizer: Any = None) -> tuple[str, str]:
    """Wrap one instance's prompt in the model's format, keeping the shared part shared."""
    if prompt_format not in FORMATS:
        raise ValueError(f"Unknown prompt format {prompt_format!r}.")
    return FORMATS[prompt_format].wrap(shared, rest, tokenizer)


def chat_wrap(tokenizer: Any) -> Callable[[str, str], tuple[str, str]]:
    """The tokenizer's chat template as a wrapper of (shared, rest), rendered as the web process renders it
    from the stored text (chat_wrap_from_template), so the preview shows what is scored."""
    template = chat_template_of(tokenizer)
    if not template:
        raise ValueError("The tokenizer has no chat template; choose the 'none' or 'alpaca' prompt format.")
    return chat_wrap_from_template(template, special_tokens_of(tokenizer))


def chat_template_of(tokenizer: Any) -> str:
    """The tokenizer's chat template text ("" if none). Of several named ones, "default", as transformers."""
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, dict):
        template = template.get("default")
    return template if isinstance(template, str) else ""


def special_tokens_of(tokenizer: Any) -> dict[str, str]:
    """The special tokens a chat template reads (`bos_token`, `eos_token`, ...)."""
    return {name: str(value) for name, value in tokenizer.special_tokens_map.items() if value is not None}


# --- Chat templates from their stored text ----------------------------------------------------------------
#
# The web process never loads a tokenizer: the model check (a worker) stores the chat template's text and the
# special tokens it reads, and the authoring preview renders that text here. A chat template comes from the
# model's files, so it is untrusted code: it runs in jinja2's immutable sandbox, set up as transformers'
# `apply_chat_template` sets it up (transformers/utils/chat_template_utils.py), so that the preview shows what
# the tokenizer renders. On top of that, results that would take the process's memory or time (a huge power
# or repetition, a huge output) are refused.

MAX_RENDERED_CHARS = 100_000
MAX_REPEAT = 10_000  # longest sequence a template may build with `*` ("  " * indent is the real use)
MAX_EXPONENT = 64


class ChatTemplateError(ValueError):
    """A stored chat template that cannot frame a prompt: it does not compile, reaches for something the
    sandbox refuses, fails while rendering, or never shows the user's message. The message says which."""


class _Generation(Extension):
    """`{% generation %}...{% endgeneration %}` marks assistant text for training masks in transformers; for
    rendering, it is its body."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(lineno)

    def _body(self, caller) -> str:
        return caller()


class _TemplateDict:
    # As transformers': `dict(...)` and `dict.fromkeys(...)` without handing the template the dict type.
    def __call__(self, *args, **kwargs):
        return dict(*args, **kwargs)

    def fromkeys(self, *args, **kwargs):
        return dict.fromkeys(*args, **kwargs)


class _TemplateNamespace(jinja2.utils.Namespace):
    # As transformers': a namespace never stores an underscore name, so it cannot reach Python's internals.
    def __init__(*args, **kwargs):
        self, args = args[0], args[1:]
        attrs = dict(*args, **kwargs)
        for name in attrs:
            _TemplateNamespace._check_name(name)
        jinja2.utils.Namespace.__init__(self, attrs)

    def __setitem__(self, name, value):
        _TemplateNamespace._check_name(name)
        jinja2.utils.Namespace.__setitem__(self, name, value)

    @staticmethod
    def _check_name(name):
        if isinstance(name, str) and name.startswith("_"):
            raise SecurityError(f"A chat template may not store {name!r} on a namespace.")


class _ChatTemplateEnvironment(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
            raise SecurityError(f"A chat template may not raise to a power above {MAX_EXPONENT}.")
        if operator == "*":
            for sequence, times in ((left, right), (right, left)):
                if isinstance(sequence, str | list | tuple) and isinstance(times, int):
                    if len(sequence) * times > MAX_REPEAT:
                        raise SecurityError(
                            f"A chat template may not build a sequence over {MAX_REPEAT:,} long."
                        )
        return super().call_binop(context, operator, left, right)


def _tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    # transformers' filter: JSON without jinja's HTML escaping.
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


# The date a template asks for (Llama-3.2's and 3.3's put "Today Date: ..." in the system header): fixed, so
# that a prompt does not change from one day to the next; the date Llama-3.1's template states.
TEMPLATE_DATE = datetime(2024, 7, 26)


def _strftime_now(format):
    return TEMPLATE_DATE.strftime(format)


@functools.lru_cache(maxsize=16)
def _compile(template: str) -> jinja2.Template:
    env = _ChatTemplateEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[_Generation, loopcontrols]
    )
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    env.globals["dict"] = _TemplateDict()
    env.globals["namespace"] = _TemplateNamespace
    return env.from_string(template)


def chat_wrap_from_template(
    template: str, tokens: Mapping[str, str]
) -> Callable[[str, str], tuple[str, str]]:
    """A chat template's text and the special tokens it reads (`bos_token`, `eos_token`, ...: the tokenizer's
    `special_tokens_map`) as a wrapper of (shared, rest): the prompt as one user message, with the generation
    prompt, rendered in the sandbox with no tokenizer. Raises ChatTemplateError for a template that cannot
    frame a prompt (tried on a probe first)."""
    return _wrapper(
        template,
        tuple(sorted((k, v) for k, v in tokens.items() if isinstance(k, str) and isinstance(v, str))),
    )


@functools.lru_cache(maxsize=64)  # the scorer wraps every item: check each template once
def _wrapper(template: str, tokens: tuple[tuple[str, str], ...]) -> Callable[[str, str], tuple[str, str]]:
    wrapper = functools.partial(_chat_wrap, template, dict(tokens))
    wrapper("Answer the question:", " \nIs it? ")
    return wrapper


def _chat_wrap(template: str, tokens: dict[str, str], shared: str, rest: str) -> tuple[str, str]:
    """The template rendered on the message itself, so that whatever it does to it (Llama-2's strip(),
    Llama-3's and Gemma's | trim) is what the model reads; the cut between the shared part and the rest is
    marked in the message and found again in the text. A shared part is empty or ends in a word (render_parts
    cuts before whitespace), so the mark never stands between the message's end and whitespace a trim takes."""
    text = _render(template, tokens, shared + rest)
    if shared:
        before, mark, after = _render(template, tokens, shared + _SENTINEL + rest).partition(_SENTINEL)
    else:
        before, mark, _ = _render(template, tokens, _SENTINEL).partition(_SENTINEL)
        after = text[len(before) :]
    if not mark or before + after != text:
        raise ChatTemplateError("it changes the user's message so that its parts cannot be told apart")
    return before, after


def _render(template: str, tokens: dict[str, str], content: str) -> str:
    variables: dict[str, Any] = dict(tokens)
    variables.update(
        messages=[{"role": "user", "content": content}],
        tools=None,
        documents=None,
        add_generation_prompt=True,
    )
    try:
        pieces, length = [], 0
        for piece in _compile(template).generate(**variables):
            length += len(piece)
            if length > MAX_RENDERED_CHARS:
                raise ChatTemplateError(f"it renders more than {MAX_RENDERED_CHARS:,} characters")
            pieces.append(piece)
    except ChatTemplateError:
        raise
    except Exception as exc:
        # Anything the template's code raises (a TemplateError, the sandbox's SecurityError, a TypeError from a
        # bad filter argument, a RecursionError from a macro calling itself) means it cannot frame a prompt.
        reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise ChatTemplateError(reason) from exc
    text = "".join(pieces)
    if _SENTINEL in content and text.count(_SENTINEL) != 1:
        raise ChatTemplateError("it does not show the user's message exactly once")
    return text
