"""Where the app's prompts, answers or gold differ from the study's own (Sun, Shaib & Wallace, ICLR 2024).

tests/collection/test_study_fidelity.py renders every entry of shared/data/paper_prompts/
study_prompts.sample.jsonl (the study's code run on 5 instances of each of the 1,162 (task, instruction)
pairs of its main results that its code can build on data we hold) with the app's imported phrasings and
instances, as the scorer renders them, and compares prompt, answers and gold. An entry is exact, or each of
its differences is explained by a departure below that matches its study task and instruction id. A departure
that no longer occurs fails the test, so each fix shrinks this list; the test prints how many entries each
explains.

Where a difference goes away when the instance's options are put in the study's order, it is counted as
"option order", not as a prompt or gold difference.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# What can differ for one entry of the sample.
DIFFERENCES = {
    "no phrasing": "the app has no approved phrasing with the study's id on the study's task",
    "no instance": "the app has no instance for the study's source row",
    "instances": "the phrasing sits on another task than the study's, so it is scored on other instances",
    "prompt": "the rendered prompt differs (for Alpaca ids: the text inside the wrapper)",
    "option order": "the prompt or the gold letter differs only because the options are in another order",
    "wrapper": "the study's Alpaca with-input wrapper differs from the app's Alpaca prompt format",
    "answers": "the app scores other answer strings than the study",
    "gold": "the same answer strings, another gold answer",
    "truncated": "the study's tokenizer cut the prompt at 512 tokens; by default the app keeps the end",
}

LETTER_TASKS = (
    "MMLU_General",
    "BBQ_Lite",
    "Code_Line_Description",
    "Conceptual_Combinations",
    "Hindu_Knowledge",
    "Known_Unknowns",
    "Logic_Grid_Puzzle",
    "Logical_Deduction",
    "Novel_Concepts",
)


@dataclass(frozen=True)
class Departure:
    cause: str
    tasks: tuple[str, ...]  # study task keys (as in instructions.json); empty: every task
    ids: str  # a regular expression the whole study id matches
    differs: frozenset[str]  # the DIFFERENCES it explains
    why: str
    fix: str  # what would remove it

    def matches(self, study_task: str, instruction_id: str) -> bool:
        return (not self.tasks or study_task in self.tasks) and re.fullmatch(
            self.ids, instruction_id
        ) is not None


def _departure(cause, tasks, ids, differs, why, fix) -> Departure:
    return Departure(cause, tuple(tasks), ids, frozenset(differs), why, fix)


DEPARTURES: tuple[Departure, ...] = (
    _departure(
        "Alpaca header without an input",
        ("Play_Dialog", "Winowhy"),
        r"Alpaca/Unobserved/(4|8|9|10)",
        {"wrapper"},
        "These instructions show the instance themselves and have no input block; the study still wraps them "
        "in Alpaca's with-input header ('..., paired with an input that provides further context.'). The app "
        "follows Alpaca's own code: the with-input header only for a prompt with an '### Input:' block. The "
        "text inside the wrapper is the study's.",
        "none planned: the study's header describes an input these prompts do not have.",
    ),
    _departure(
        "512-token truncation",
        ("Logic_Grid_Puzzle",),
        r".*",
        {"truncated"},
        "The study's tokenizer call cut prompts over 512 tokens at the end (question, options and answer cue "
        "included): estimated for T5, exact for LLaMA. The app keeps the end of a long prompt by default (as "
        "lm-evaluation-harness does); a model registered with truncation 'cut_end' and a 512-token limit cuts "
        "as the study did. The prompt compared here is before truncation.",
        "none: the study's behaviour is an option per model.",
    ),
)

# Known departures the sample does not exercise (the test cannot check them): MMLU high_school_macroeconomics
# row 183 has duplicate options and the study's gold (looked up by text) is A where the CSV says D (the app
# keeps the CSV's answer); the study's own code cannot build T0/BC/1-8 and T0/Classification/3 (skipped and
# reported); language_identification and vitaminc_fact_verification have no data in ../shared.
