"""Strict parsing of what comes from outside: ids in query strings and forms, and JSON bodies of the API.

An id is ASCII digits within PostgreSQL's bigint; anything else is refused with a message (400), never passed
on to int() or the database. `str.isdigit()` is not enough: it is true for "²" (which int() refuses) and for
"٣" (which int() reads as 3). A JSON body is refused (400) when it nests deeper than MAX_JSON_DEPTH, holds a
number that is not finite (1e999 parses as infinity) or a text with a NUL character, which PostgreSQL cannot
store or compare (a query with one fails in the database); core/middleware.py refuses NUL in query strings,
paths and form bodies.
"""

from __future__ import annotations

import codecs
import json
import math

import django_filters
from django import forms
from django.conf import settings
from django.core.exceptions import BadRequest, RequestDataTooBig, ValidationError
from django.core.validators import slug_re
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

BIGINT_MAX = 2**63 - 1
# Deeper than any body the API reads (a phrasing's labels are a list of strings); deep enough for clients.
MAX_JSON_DEPTH = 32


def is_slug(value: object) -> bool:
    """Whether the value can name a page: Django's slug (ASCII letters, digits, hyphens, underscores; no
    trailing newline, which a `$` pattern lets through)."""
    return isinstance(value, str) and bool(slug_re.match(value))


def slug_problem(value: object, what: str, *, max_length: int = 100) -> str | None:
    """Why the value cannot name a benchmark, task or model, or None. Their pages' addresses take a slug
    (Django's: ASCII letters, digits, hyphens and underscores); a name saved without this check (commands
    write with .create, which runs no validators) made every page that links to it answer 500."""
    if not is_slug(value):
        return (
            f"{what} {value!r} is not a slug: use ASCII letters, digits, hyphens and underscores only "
            "(it is part of the pages' addresses)"
        )
    if len(value) > max_length:
        return f"{what} {value!r} is longer than {max_length} characters"
    return None


def parse_id(value: object) -> int | None:
    """A row id: a text of ASCII digits from 1 to PostgreSQL's bigint maximum; None for anything else."""
    if not isinstance(value, str) or not (value.isascii() and value.isdigit()) or len(value) > 19:
        return None
    number = int(value)
    return number if 1 <= number <= BIGINT_MAX else None


class InvalidParameter(BadRequest):
    """A query-string or form parameter that does not parse. Its message is shown to the user (400)."""


def id_param(params, name: str) -> int | None:
    """The id in `params[name]` (request.GET or request.POST); None when it is absent or empty."""
    raw = params.get(name, "")
    if raw == "":
        return None
    number = parse_id(raw)
    if number is None:
        raise InvalidParameter(f"'{name}' must be an id: a whole number from 1 to {BIGINT_MAX}.")
    return number


class IdField(forms.Field):
    default_error_messages = {"invalid": f"Enter an id: a whole number from 1 to {BIGINT_MAX}."}

    def to_python(self, value):
        if value in self.empty_values:
            return None
        number = parse_id(value)
        if number is None:
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        return number


class IdFilter(django_filters.NumberFilter):
    """A django-filter filter on an id, parsed by parse_id: "1.5", "1e999", "²" and 20-digit numbers are a
    400 with the message above (NumberFilter would take them as decimals and query with them)."""

    field_class = IdField


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"the number {text[:40]} is out of range")
    return number


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _json_problem(value) -> str | None:
    """What is wrong with parsed JSON, walked with a stack (not recursion): nesting deeper than
    MAX_JSON_DEPTH, or a NUL character in a text (PostgreSQL's text and jsonb cannot hold one)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str) and "\x00" in item:
            return "A text in the JSON body contains a NUL character (\\u0000)."
        if isinstance(item, dict | list):
            if depth > MAX_JSON_DEPTH:
                return f"The JSON body nests deeper than {MAX_JSON_DEPTH} levels."
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return None


def has_nul(query) -> bool:
    """Whether a QueryDict (request.GET, request.POST) holds a NUL character in a name or a value."""
    return any("\x00" in key or any("\x00" in value for value in values) for key, values in query.lists())


class StrictJSONParser(JSONParser):
    """DRF's JSON parser, refusing what Python's parser lets through or fails on: nesting deeper than
    MAX_JSON_DEPTH (very deep nesting raises RecursionError, a server error), numbers that are not finite
    (1e999 becomes infinity, which no field takes) and NUL characters in texts. A body over Django's
    DATA_UPLOAD_MAX_MEMORY_SIZE is refused as it is read (core/api.py answers it). Not every release in our
    ranges applies that setting to the stream DRF hands a parser (Django 5.2.0 with DRF 3.15.0 reads it all),
    so the parser itself reads no more than the limit and one byte."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        body = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(body) > limit:
            raise RequestDataTooBig("Request body exceeded settings.DATA_UPLOAD_MAX_MEMORY_SIZE.")
        try:
            text = codecs.decode(body, encoding)
            data = json.loads(text, parse_float=_finite, parse_constant=_no_constant)
        except RecursionError:
            raise ParseError(f"The JSON body nests deeper than {MAX_JSON_DEPTH} levels.") from None
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise ParseError(f"JSON parse error - {exc}") from None
        problem = _json_problem(data)
        if problem:
            raise ParseError(problem)
        return data
