"""Per-task input fields for BIG-bench Lite, as the study's templates use them.

The study (InstructionEval, configs/BBH/*.py) splits some tasks' raw `input` into named fields, e.g.
`{play}`, `{line1}` and `{line2}` for play_dialog_same_or_different. We reproduce those splits with the
regexes below (each matched every local example of the subtasks the study used). `question` is the raw
input unless a split redefines it; `input` is always the raw input (the study's `{question}` in some
templates, and BIG-bench's own prompt, use the whole of it where our split cuts `question` down). An example
that does not match keeps the raw input as `question` and empty strings for the other fields; the importer
counts such fallbacks in its report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class FieldSpec:
    pattern: re.Pattern | None = None
    # Options replaced by a fixed list; the gold option is then looked up by its text.
    fixed_options: tuple[str, ...] = ()
    # The answer is always the first option in the raw data, so options are shuffled as the study did: one
    # random.Random(42) stream over every example, subtask folders in `shuffle_folders` order (the study's
    # os.listdir order, recorded in shared/data/paper_prompts/SOURCE.txt), each file's examples in order.
    shuffle_options: bool = False
    shuffle_folders: tuple[str, ...] = ()
    # Extra fields a template may use besides `question`.
    extra_fields: tuple[str, ...] = field(default=())

    def input_fields(self) -> list[str]:
        return ["question", *self.extra_fields, "input"]

    def split(self, text: str) -> tuple[dict[str, str], bool]:
        """The example's fields, and whether the split matched."""
        inputs = {"question": text, "input": text}
        if self.pattern is None:
            return inputs, True
        match = self.pattern.match(text)
        if match is None:
            return inputs | {name: "" for name in self.extra_fields}, False
        return inputs | match.groupdict(), True


SPECS: dict[str, FieldSpec] = {
    # `paragraph` is the play without the newline that ends it: NIV2's mapping (map_to_niv2_56) joins the
    # input's first line and the rest as "Paragraph- <first line> Question: <rest>".
    "play_dialog_same_or_different": FieldSpec(
        pattern=re.compile(
            r'^(?P<play>(?P<paragraph>.*?)\n?)In the preceding dialogue, were the lines "(?P<line1>[^"]*)" and '
            r'"(?P<line2>[^"]*)" spoken by the same person or different people\?$',
            re.S,
        ),
        extra_fields=("play", "paragraph", "line1", "line2"),
    ),
    # `things` is the list without the task's own question: the study's templates that ask it in their own
    # words drop "What do the following have in common? " from the input.
    "novel_concepts": FieldSpec(
        pattern=re.compile(r"^(?:What do the following have in common\? )?(?P<things>.*)$", re.S),
        extra_fields=("things",),
    ),
    # Context is the first line, question the rest (the study used the boolean subtask).
    "strange_stories": FieldSpec(
        pattern=re.compile(r"^(?P<context>[^\n]*)\n(?P<question>.*)$", re.S), extra_fields=("context",)
    ),
    "winowhy": FieldSpec(
        pattern=re.compile(r"^(?P<context>.*?)(?P<explanation>The '.*)$", re.S),
        extra_fields=("context", "explanation"),
    ),
    "conceptual_combinations": FieldSpec(
        pattern=re.compile(r"^(?P<context>.*?)Question: (?P<question>.*)$", re.S),
        extra_fields=("context",),
        shuffle_options=True,
        shuffle_folders=(
            "invented_words",
            "emergent_properties",
            "fanciful_fictional_combinations",
            "contradictions",
            "surprising_uncommon_combinations",
            "homonyms",
        ),
    ),
    "logic_grid_puzzle": FieldSpec(
        pattern=re.compile(r"^(?P<context>.*?)\n\n(?P<clues>Clue\(s\):\n.*?)\n\n(?P<question>[^\n]*)$", re.S),
        extra_fields=("context", "clues"),
        fixed_options=("1", "2", "3", "4", "5"),
    ),
}


def spec_for(task_dir_name: str) -> FieldSpec:
    return SPECS.get(task_dir_name, FieldSpec())
