"""Phrasing templates: parse, validate and render, with no access to Python objects.

A phrasing is plain text with placeholders in braces, in the study's style: `{question}`, `{context}`,
`{choiceA}`..`{choiceZ}`, `{options_}`. Rendering substitutes strings from a flat dict and nothing else:
we never call `str.format` or a template engine, so `{x.__class__}`, `{x[0]}`, `{{ ... }}` expressions
or `{% ... %}` tags cannot reach Python. Anything that is not a plain placeholder name is refused at
validation time with a message a person can act on.

Option listings (for tasks whose instances carry answer options):
    {choiceA} .. {choiceZ}   one option's text (empty when the instance has fewer options)
    {options}                one option per line, lettered:   "A. first\\nB. second"
    {options:letters}        the same as {options}
    {options:parens}         "(A) first\\n(B) second"
    {options:bullets}        "- first\\n- second"
    {options:numbers}        "1. first\\n2. second"
    {options_}               the study's listing: a newline before each lettered option, "\\nA. first\\nB. second"
Literal braces are written doubled: `{{` and `}}`.

The module is pure Python (no Django) so the scorer and the hypothesis tests can use it directly.
"""

from __future__ import annotations

import difflib
import re
import string
from dataclasses import dataclass, field

LETTERS = string.ascii_uppercase
CHOICE_FIELDS = tuple(f"choice{letter}" for letter in LETTERS)
OPTION_STYLES = ("letters", "parens", "bullets", "numbers")
OPTION_LISTINGS = ("options", "options_")

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Placeholder:
    name: str
    style: str | None = None

    def __str__(self) -> str:
        return "{" + self.name + (f":{self.style}" if self.style else "") + "}"


@dataclass(frozen=True)
class TaskFields:
    """What a task offers a template: its instance fields, how many options, which fields are required."""

    input_fields: tuple[str, ...]
    max_options: int = 0
    required: tuple[str, ...] = ()
    options_answered_by_letter: bool = False

    def allowed_names(self) -> list[str]:
        names = list(self.input_fields)
        if self.max_options:
            names += list(CHOICE_FIELDS[: self.max_options]) + list(OPTION_LISTINGS)
        return names


@dataclass
class Validation:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    placeholders: list[Placeholder] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


class TemplateError(ValueError):
    """A template that cannot be parsed or rendered; the message is meant for the person who wrote it."""


def literal(text: str) -> str:
    """Plain text as template text: braces doubled, so they print as themselves."""
    return text.replace("{", "{{").replace("}", "}}")


def parse(text: str) -> list[str | Placeholder]:
    """Split a template into literal strings and placeholders. Raises TemplateError on bad syntax."""
    parts: list[str | Placeholder] = []
    literal: list[str] = []
    pos = 0
    for match in _TOKEN.finditer(text):
        literal.append(text[pos : match.start()])
        pos = match.end()
        token = match.group(0)
        if token == "{{":
            literal.append("{")
        elif token == "}}":
            literal.append("}")
        elif token in ("{", "}"):
            raise TemplateError(
                f"Unmatched '{token}' at character {match.start() + 1}. "
                f"Write '{token}{token}' for a literal brace."
            )
        else:
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append(_placeholder(match.group(1)))
    literal.append(text[pos:])
    if "".join(literal):
        parts.append("".join(literal))
    return parts


def _placeholder(inner: str) -> Placeholder:
    name, _, style = inner.strip().partition(":")
    if not _NAME.fullmatch(name) or inner != inner.strip():
        raise TemplateError(
            f"'{{{inner}}}' is not a placeholder. Placeholders are plain names such as {{question}}; "
            "attribute access, indexing, expressions and format codes are not allowed."
        )
    if style:
        if name != "options":
            raise TemplateError(f"'{{{inner}}}': only {{options}} takes a style, as in {{options:bullets}}.")
        if style not in OPTION_STYLES:
            raise TemplateError(
                f"'{{{inner}}}': unknown option style '{style}'. Use one of: "
                + ", ".join(f"{{options:{s}}}" for s in OPTION_STYLES)
                + "."
            )
    return Placeholder(name, style or None)


# Unicode's explicit direction embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069): shown, they
# reorder the text a curator reads ("Trojan Source"), while the model reads the characters in stored order.
DIRECTION_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def direction_controls(text: str) -> str:
    """The direction controls in the text, as U+XXXX, or "" when it has none."""
    return ", ".join(sorted({f"U+{ord(c):04X}" for c in text if c in DIRECTION_CONTROLS}))


def validate(text: str, fields: TaskFields, *, max_chars: int) -> Validation:
    """Check a template against a task. Never raises: problems come back as messages."""
    result = Validation()
    if not text or not text.strip():
        result.errors.append("The phrasing is empty. Write the instruction and place the instance in it.")
        return result
    if len(text) > max_chars:
        result.errors.append(f"The phrasing is {len(text):,} characters long; the limit is {max_chars:,}.")
        return result
    if "\x00" in text:
        result.errors.append("The phrasing contains a NUL character; remove it.")
        return result
    if controls := direction_controls(text):
        result.errors.append(
            f"The phrasing contains invisible text-direction controls ({controls}): a reader would see the "
            "text reordered, not what the model reads. Remove them."
        )
        return result
    try:
        parts = parse(text)
    except TemplateError as exc:
        result.errors.append(str(exc))
        return result

    result.placeholders = [p for p in parts if isinstance(p, Placeholder)]
    used = {p.name for p in result.placeholders}
    allowed = fields.allowed_names()
    for name in sorted(used - set(allowed), key=lambda n: [p.name for p in result.placeholders].index(n)):
        message = f"Unknown placeholder {{{name}}}."
        close = difflib.get_close_matches(name, allowed, n=1)
        if close:
            message += f" Did you mean {{{close[0]}}}?"
        message += " This task offers: " + ", ".join(f"{{{n}}}" for n in allowed) + "."
        result.errors.append(message)

    for name in fields.required:
        if name not in used:
            result.errors.append(f"The phrasing must contain {{{name}}}: without it the model never sees it.")
    instance_names = set(fields.input_fields)
    if fields.max_options:
        instance_names |= set(CHOICE_FIELDS[: fields.max_options]) | set(OPTION_LISTINGS)
    if not used & instance_names:
        shown = ", ".join(f"{{{n}}}" for n in fields.input_fields)
        result.errors.append(f"The phrasing never shows the instance. Add at least one of: {shown}.")

    if fields.max_options and fields.options_answered_by_letter and result.ok:
        listed = used & set(OPTION_LISTINGS)
        choices = used & set(CHOICE_FIELDS[: fields.max_options])
        if not listed and not choices:
            result.warnings.append(
                "The answer is a letter, but the phrasing shows no options. "
                "Add {options} (or {choiceA}, {choiceB}, ...) so the letters mean something."
            )
        elif not listed and len(choices) < fields.max_options:
            missing = [f"{{{c}}}" for c in CHOICE_FIELDS[: fields.max_options] if c not in choices]
            result.warnings.append(
                "Some instances have more options than the phrasing shows; missing: "
                + ", ".join(missing)
                + "."
            )
    return result


def render(
    text: str, inputs: dict[str, str], options: list[str] | None = None, *, listing: str | None = None
) -> str:
    """Render a template on one instance. Only string values from `inputs` and `options` are substituted.
    `listing`: the options already laid out in a format (collection/formats.py), put where an unstyled
    `{options}` stands (and after a newline where `{options_}` does) instead of the lettered lines."""

    def value(part: Placeholder) -> str:
        if listing is not None and part.name in OPTION_LISTINGS and not part.style:
            return listing if part.name == "options" else "\n" + listing
        return _value(part, inputs, options or [])

    return "".join(part if isinstance(part, str) else value(part) for part in parse(text))


def _value(placeholder: Placeholder, inputs: dict[str, str], options: list[str]) -> str:
    name = placeholder.name
    if name in inputs:
        return str(inputs[name])
    if name.startswith("choice") and name in CHOICE_FIELDS:
        index = CHOICE_FIELDS.index(name)
        return options[index] if index < len(options) else ""
    if name == "options":
        return list_options(options, placeholder.style or "letters")
    if name == "options_":
        return "".join(f"\n{LETTERS[i]}. {text}" for i, text in enumerate(options))
    raise TemplateError(f"The instance has no value for {placeholder}.")


def list_options(options: list[str], style: str) -> str:
    if style == "letters":
        lines = [f"{LETTERS[i]}. {text}" for i, text in enumerate(options)]
    elif style == "parens":
        lines = [f"({LETTERS[i]}) {text}" for i, text in enumerate(options)]
    elif style == "bullets":
        lines = [f"- {text}" for text in options]
    elif style == "numbers":
        lines = [f"{i + 1}. {text}" for i, text in enumerate(options)]
    else:
        raise TemplateError(f"Unknown option style '{style}'.")
    return "\n".join(lines)


def render_parts(text: str, inputs: dict[str, str], options: list[str] | None = None) -> tuple[str, str]:
    """Render a template as (shared, rest): `shared` is the phrasing's text before its first placeholder,
    identical for every instance, so a causal model can compute it once per phrasing; `rest` is the remainder.

    The cut is made before the shared text's last whitespace run, where tokenizers start a new word, so the
    shared part's tokens are usually also the whole text's first tokens. The scorer still reads the whole
    text's ids (evaluation/ml/encoding.py): a SentencePiece tokenizer marks a separately tokenized piece as a
    new word, and Llama-3's joins a line break to the punctuation before it."""
    parts = parse(text)
    lead: list[str] = []
    for part in parts:
        if not isinstance(part, str):
            break
        lead.append(part)
    shared = "".join(lead)
    match = re.search(r"\s+$", shared) or re.search(r"\s+\S*$", shared)
    cut = match.start() if match else 0
    rendered = render(text, inputs, options)
    return rendered[:cut], rendered[cut:]
