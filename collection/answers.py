"""What a model may answer to an instance under a phrasing: the task's letters, the option texts, or the
phrasing's own label words. The scorer, the soft-prompt trainer and the authoring preview all ask here, so
the preview shows exactly what will be scored."""

from __future__ import annotations

from collection import templating
from collection.models import Instance, InstructionRevision, Task


def answer_texts(task: Task, labels: list[str] | None, instance: Instance) -> tuple[str, ...]:
    """The answers for label words given directly (a draft in the authoring preview has no revision yet)."""
    if task.answer_format == Task.AnswerFormat.LETTER:
        return tuple(templating.LETTERS[: len(instance.options)])
    if labels:
        words = dict(zip(task.label_space, labels))
        return tuple(words.get(option, option) for option in instance.options)
    return tuple(instance.options)


def option_texts(task: Task, revision: InstructionRevision, instance: Instance) -> tuple[str, ...]:
    """The answers a revision's phrasing asks for on an instance."""
    return answer_texts(task, revision.labels, instance)
