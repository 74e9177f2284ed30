"""What differs between the transformers releases that pyproject.toml allows, kept in one place.

The key/value cache's name. transformers 5.24 renamed it from `past_key_values` to `cache`, both as the
models' keyword argument and as the field of their outputs. On 5.24 and later the old name is a deprecated
alias (a FutureWarning, removal announced for 5.40); before 5.24 the new name does not exist (a model's
output has no `.cache`, and `cache=` is ignored, so nothing is reused). The scorer and the soft-prompt
training pass and read the cache under whichever name the installed release declares: `with_cache(cache)`
as keyword arguments, `cache_of(output)` to read it. Drop this once the floor is 5.24 or later.
"""

from __future__ import annotations

import dataclasses
import functools


@functools.cache
def cache_name() -> str:
    """`cache` (transformers 5.24 and later) or `past_key_values` (5.0 to 5.23)."""
    # Lazy import: transformers takes seconds to import and the web process never needs it.
    from transformers.modeling_outputs import BaseModelOutputWithPast

    fields = {field.name for field in dataclasses.fields(BaseModelOutputWithPast)}
    return "cache" if "cache" in fields else "past_key_values"


def with_cache(cache) -> dict:
    """The keyword argument that hands a model its cache: `model(..., **with_cache(cache))`."""
    return {cache_name(): cache}


def cache_of(output):
    """The cache a model returned (called with use_cache=True)."""
    return getattr(output, cache_name())
