"""The phrasing generator (collection/phrasing_generator.py): many distinct, valid, human-like phrasings per
demo task, the same from the same seed, a stream that grows without renumbering."""

from __future__ import annotations

import re

import pytest

from collection import templating
from collection.demo import TASKS, generated_templates
from collection.phrasing_generator import DEMO_GRAMMARS, Grammar, _normalised, generate

SPECS = {spec.slug: spec for spec in TASKS}


@pytest.mark.parametrize("slug", sorted(DEMO_GRAMMARS))
def test_it_gives_many_distinct_valid_phrasings_that_show_the_instance(slug):
    spec = SPECS[slug]
    fields = templating.TaskFields(
        input_fields=tuple(spec.input_fields),
        max_options=len(spec.label_space),
        options_answered_by_letter=spec.answer_format == "letter",
    )
    texts = generate(DEMO_GRAMMARS[slug], 150, seed=0)
    assert len({_normalised(t) for t in texts}) == 150
    for text in texts:
        check = templating.validate(text, fields, max_chars=2000)
        assert check.ok and not check.warnings, (text, check.errors, check.warnings)
        # Words, not token noise: every phrasing is made of dictionary-like words and the instance.
        assert re.fullmatch(r"[\w\s.,:;!?'\"()/=\-{}]+", text), text
    # Varied, not one frame with a word swapped: many different first lines and answer cues.
    assert len({t.splitlines()[0].split(" ")[0] for t in texts}) >= 10
    if spec.answer_format == "option_text":
        assert all(any(label in t for label in spec.label_space) for t in texts)


def test_the_same_seed_gives_the_same_stream_and_longer_lists_keep_the_first_ones():
    grammar = DEMO_GRAMMARS["parity"]
    first = generate(grammar, 40, seed=3)
    assert generate(grammar, 40, seed=3) == first
    assert generate(grammar, 70, seed=3)[:40] == first
    assert generate(grammar, 40, seed=4) != first


def test_it_never_repeats_a_text_it_is_told_to_avoid():
    spec = SPECS["parity"]
    texts = generated_templates(spec, 60)
    handwritten = {_normalised(t) for t in (*spec.observed, *spec.unobserved)}
    assert not handwritten & {_normalised(t) for t in texts}
    blocked = generate(DEMO_GRAMMARS["parity"], 10, seed=0, avoid=tuple(texts[:5]))
    assert not {_normalised(t) for t in texts[:5]} & {_normalised(t) for t in blocked}


def test_a_grammar_too_small_for_the_count_says_so():
    tiny = Grammar(name="tiny", asks=("Is {number} even?",), block_asks=(), blocks=(), cues=("yes or no",))
    with pytest.raises(ValueError, match="fewer than"):
        generate(tiny, 10_000)
