"""The ML core's plain data: what is scored (ScoringItem), what comes back (OptionScores), and what a soft prompt
trains on (TrainingTask). Nothing here imports torch, so the app's modules that build items or read scores load
without it: only a process that loads a model pays torch's import (tests/core/test_startup.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ScoringItem:
    shared: str  # text every instance of the phrasing starts with (see prompts.py)
    rest: str  # the rest of this instance's prompt
    options: tuple[str, ...]  # what the model may answer, in option order


@dataclass(frozen=True)
class OptionScores:
    logliks: tuple[float, ...]  # sum of log p(option tokens | prompt), per option
    lengths: tuple[int, ...]  # option lengths in tokens, for length-normalised scores
    truncated: bool = False  # the prompt was cut to the model's input length

    @property
    def predicted(self) -> int:
        return max(range(len(self.logliks)), key=self.logliks.__getitem__)

    @property
    def normalised(self) -> tuple[float, ...]:
        return tuple(ll / n for ll, n in zip(self.logliks, self.lengths))


Batch = list[tuple[int, OptionScores]]


@dataclass(frozen=True)
class TrainingTask:
    """One task's training data: the phrasings that may be trained on (revision ids), which of them are
    observed for the model (anchors), and how to build the prompt of (phrasing, instance)."""

    name: str
    phrasings: tuple[int, ...]
    anchors: tuple[int, ...]
    instance_count: int
    item: Callable[[int, int], ScoringItem]  # (phrasing id, instance index) -> prompt and options
    gold: Callable[[int], int]  # instance index -> index of the correct option
