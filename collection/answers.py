"""What a model may answer to an instance under a phrasing: the task's letters or label words, the phrasing's
own label words, or the option texts. The scorer, the soft-prompt trainer and the authoring preview all ask
here, so the preview shows exactly what will be scored."""

from __future__ import annotations

from collection import templating
from collection.models import Answers, Instance, InstructionRevision, Task


def answers_for(labels: list[str] | None, answers: str | None) -> str:
    """The answers a phrasing declares; None means "as its label words say" (words when it has any)."""
    if answers is not None:
        return answers
    return Answers.WORDS if labels else Answers.TASK


def answer_texts(
    task: Task, labels: list[str] | None, instance: Instance, answers: str | None = None
) -> tuple[str, ...]:
    """The answers for label words given directly (a draft in the authoring preview has no revision yet)."""
    answers = answers_for(labels, answers)
    if answers == Answers.TEXTS:
        return tuple(instance.options)
    letters = task.answer_format == Task.AnswerFormat.LETTER
    if answers == Answers.WORDS and labels:
        if letters:
            # One word per option position: "1".."5" for A..E.
            return tuple(labels[: len(instance.options)])
        words = dict(zip(task.label_space, labels))
        return tuple(words.get(option, option) for option in instance.options)
    if letters:
        return tuple(templating.LETTERS[: len(instance.options)])
    return tuple(instance.options)


def option_texts(
    task: Task, revision: InstructionRevision, instance: Instance, positions: list[int] | None = None
) -> tuple[str, ...]:
    """The answers a revision's phrasing asks for on an instance. `positions`: the order a format shows the
    options in (collection/formats.py): answers tied to an option (its text, a label word) follow it, answers
    tied to a place (the letters) stay."""
    if positions is not None:
        instance = _Shown([instance.options[i] for i in positions])
    return answer_texts(task, revision.labels, instance, revision.answers)


class _Shown:
    """An instance's options as a format shows them: all answer_texts reads of an instance."""

    def __init__(self, options: list[str]) -> None:
        self.options = options
