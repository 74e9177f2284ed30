"""Many human-like phrasings of a task, generated from a small grammar, deterministic from a seed.

Why: the study's robustness figures (spread, held-out improvement) need many equivalent phrasings per task,
and a handful of hand-written ones leaves every interval wide. The demo benchmark uses this generator to give
each task dozens of extra phrasings (collection/demo.py); bench scripts that need phrasing texts can call
`generate` with a grammar of their own.

A phrasing is put together the way people write instructions, from parts that each vary independently:
- an opening framing, often none ("Quick quiz.", "I need a hand with something small.");
- the request itself, worded with different verbs and framings ("Is {number} even?", "Tell me whether ...",
  "Decide if ..."), either with the input inline or with the input shown on its own line after a label;
- for multiple-choice tasks, the options in one of several layouts (lettered lines, parenthesised letters,
  an inline list, a labelled block);
- an answer-format cue ("Reply with yes or no.", "Give only the letter."), before or after the request;
- an answer prompt at the end ("Answer:", "A:", "Your answer:", or none).
Parts are joined with a space, a line break or a blank line. Every phrasing asks for the same answer in the
task's own answer vocabulary (the demo's label words, or option letters), so all of them stay equivalent.
This is not token noise: every phrasing is a sentence a person could have written. It is also not the crowd:
the phrasings share the grammar's parts, so a soft prompt trained on some of them is judged on held-out
phrasings from the same family of wordings, not on wordings of a kind it never met. Say so where it matters.

`generate(grammar, count, seed)` returns `count` distinct templates (distinct after collapsing whitespace and
case, as the app's duplicate check compares them). The output is a stream: asking for more keeps the first
ones unchanged, so a benchmark can grow its generated phrasings without renumbering the old ones.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

# Openings shared by every task: framings people put before a request. "" (no opening) is the most common.
OPENINGS = (
    "",
    "",
    "",
    "Quick quiz.",
    "Here is a small task for you.",
    "I need a hand with something small.",
    "Please read carefully.",
    "Let's see how you do on this one.",
    "This is part of a short test.",
    "Consider the following.",
    "Take a moment before answering.",
    "A simple question:",
    "Your task is below.",
    "Hi! Could you help me with this?",
)
ENDINGS = ("", "", "Answer:", "Answer:", "A:", "Your answer:", "Response:", "The answer is")
SEPARATORS = (" ", "\n", "\n\n")


@dataclass(frozen=True)
class Grammar:
    """The parts of one task's phrasings. `asks`: requests with the input inline; `block_asks`: requests that
    refer to an input shown on its own line, as one of `blocks`; `cues`: answer-format cues; `layouts`: how the
    options are listed (multiple-choice tasks; empty when the request already shows everything)."""

    name: str  # seeds the draws apart from other grammars' with the same seed
    asks: tuple[str, ...]
    block_asks: tuple[str, ...]
    blocks: tuple[str, ...]
    cues: tuple[str, ...]
    layouts: tuple[str, ...] = ()


def _normalised(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def _compose(grammar: Grammar, rng: random.Random) -> str:
    sep = rng.choice(SEPARATORS)
    # (text, is a block): a block (a labelled input, the options) always starts on a line of its own.
    request = []
    if grammar.block_asks and rng.random() < 0.4:
        request = [(rng.choice(grammar.block_asks), False), (rng.choice(grammar.blocks), True)]
    else:
        request = [(rng.choice(grammar.asks), False)]
    if grammar.layouts:
        request.append((rng.choice(grammar.layouts), True))
    opening, cue = (rng.choice(OPENINGS), False), (rng.choice(grammar.cues), False)
    # Some people state the answer format first, most after the request.
    parts = [opening, cue, *request] if rng.random() < 0.25 else [opening, *request, cue]
    parts.append((rng.choice(ENDINGS), False))
    text, after_block = "", False
    for part, block in parts:
        if not part:
            continue
        if text:
            text += "\n" if (block or after_block) and sep == " " else sep
        text += part
        after_block = block
    return text


def generate(grammar: Grammar, count: int, *, seed: int = 0, avoid: tuple[str, ...] = ()) -> list[str]:
    """`count` distinct templates from the grammar; the first n of a longer list are the n of a shorter one.
    `avoid`: texts already in use (say, hand-written phrasings), never generated again."""
    rng = random.Random(f"phrasing-generator:{grammar.name}:{seed}")
    seen = {_normalised(text) for text in avoid}
    out: list[str] = []
    attempts = 0
    while len(out) < count:
        attempts += 1
        if attempts > 200 * (count + 10):
            raise ValueError(f"The grammar gives fewer than {count} distinct phrasings; add parts to it.")
        text = _compose(grammar, rng)
        key = _normalised(text)
        if key not in seen:
            seen.add(key)
            out.append(text)
    return out


def _yes_no_cues(yes: str, no: str) -> tuple[str, ...]:
    return (
        f"Answer {yes} or {no}.",
        f"Reply with {yes} or {no}.",
        f'Respond with "{yes}" or "{no}".',
        f"Just say {yes} or {no}.",
        f"Your answer must be one word: {yes} or {no}.",
        f"({yes}/{no})",
        f"Options: {yes}, {no}.",
        f"Please answer with {yes} or {no} only.",
        f"Choose between {yes} and {no}.",
    )


def _letter_cues(letters: str) -> tuple[str, ...]:
    last = letters[-1]
    return (
        "Answer with the letter of the correct option.",
        "Give only the letter.",
        f"Reply with one letter ({letters[0]}-{last}).",
        "Respond with the option's letter and nothing else.",
        "Which letter is it?",
        f"Pick {', '.join(letters[:-1])} or {last}.",
        "Write the letter of your choice.",
        "The answer is a single letter.",
    )


# Option layouts for letter-answered tasks, as the templating placeholders render them.
LETTER_LAYOUTS = (
    "{options}",
    "{options:parens}",
    "Options:\n{options}",
    "Choices:\n{options:parens}",
)

# The demo benchmark's tasks (collection/demo.py), by slug.
DEMO_GRAMMARS = {
    "parity": Grammar(
        name="parity",
        asks=(
            "Is {number} even?",
            "Is {number} an even number?",
            "Is the number {number} even?",
            "Tell me whether {number} is even.",
            "Decide if {number} is an even number.",
            "Can {number} be divided by two with nothing left over?",
            "Would you call {number} an even number?",
            "Check whether {number} is divisible by 2.",
            "Is {number} a multiple of two?",
            "Does {number} split into two equal whole numbers?",
            "Someone claims that {number} is even. Are they right?",
            "Determine whether the integer {number} is even.",
        ),
        block_asks=(
            "Is the following number even?",
            "Decide whether this integer is even.",
            "Tell me if the number below is divisible by two.",
            "Look at this number and say whether it is even.",
            "Is the number given here an even one?",
        ),
        blocks=("Number: {number}", "{number}", "Input: {number}", "n = {number}", '"{number}"'),
        cues=_yes_no_cues("yes", "no"),
    ),
    "sentiment": Grammar(
        name="sentiment",
        asks=(
            'Is the review "{sentence}" positive or negative?',
            'What is the sentiment of "{sentence}"?',
            'Someone wrote: "{sentence}" How did they feel about it?',
            'Classify the tone of this review: "{sentence}"',
            'Did the writer of "{sentence}" like it?',
            "Read this short review: {sentence} Is the opinion positive or negative?",
            'Decide whether "{sentence}" expresses a positive or a negative view.',
            'A friend texted: "{sentence}" Was it a good experience?',
            "Tell me the sentiment of the following sentence: {sentence}",
            'How does the reviewer feel, judging by "{sentence}"?',
        ),
        block_asks=(
            "What is the sentiment of this review?",
            "Classify the review below.",
            "Is the opinion in the following text positive or negative?",
            "Read the review and judge its tone.",
            "How did the author feel about it?",
        ),
        blocks=("Review: {sentence}", "{sentence}", 'Text: "{sentence}"', "Sentence: {sentence}"),
        cues=_yes_no_cues("positive", "negative"),
    ),
    "larger-number": Grammar(
        name="larger-number",
        asks=(
            "{question}",
            "Which of the two numbers is bigger?",
            "Pick the larger of these two numbers.",
            "Which option shows the greater number?",
            "One of these numbers is larger than the other. Which one?",
            "If you could keep one amount, which is more?",
            "Find the maximum of the two values.",
            "Select the number with the higher value.",
            "Compare the numbers and choose the greater one.",
            "Which value is higher?",
        ),
        block_asks=(),
        blocks=(),
        cues=_letter_cues("AB"),
        layouts=(*LETTER_LAYOUTS, "A: {choiceA}, B: {choiceB}.", "(A) {choiceA} or (B) {choiceB}?"),
    ),
    "odd-one-out": Grammar(
        name="odd-one-out",
        asks=(
            "{question}",
            "Which word is the odd one out?",
            "Three of these words belong together. Which one does not?",
            "Find the word that does not fit.",
            "One word here is from a different category. Which?",
            "Spot the intruder among these words.",
            "Which item does not belong in the group?",
            "Which of the following is unlike the others?",
            "Pick the word that breaks the pattern.",
            "Sort the words by meaning: which one is left over?",
        ),
        block_asks=(),
        blocks=(),
        cues=_letter_cues("ABCD"),
        layouts=(
            *LETTER_LAYOUTS,
            "A) {choiceA}, B) {choiceB}, C) {choiceC}, D) {choiceD}.",
            "(A) {choiceA} (B) {choiceB} (C) {choiceC} (D) {choiceD}",
        ),
    ),
}
