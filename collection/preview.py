"""The authoring preview: a draft phrasing validated and rendered on a few real instances of its task, with
the answers a model chooses among. A model's prompt format is applied by the caller's `wrap` (evaluation
knows models; see evaluation/prompt_formats.py), so the preview shows exactly what that model receives."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings

from collection import selectors, templating
from collection.answers import answer_texts
from collection.models import Instance, Task
from collection.services import answers_errors, label_errors

SAMPLE_COUNT = 3


@dataclass
class Sample:
    instance: Instance
    prompt: str
    answers: list[str]
    gold: int


@dataclass
class Preview:
    validation: templating.Validation
    samples: list[Sample] = field(default_factory=list)
    format_name: str = "none"
    format_note: str = ""

    @property
    def ok(self) -> bool:
        return self.validation.ok


def sample_instances(task: Task, count: int = SAMPLE_COUNT) -> list[Instance]:
    """The first few evaluation instances of the task (the same ones every time, so previews compare)."""
    return list(selectors.task_eval_instances(task).order_by("id")[:count])


Wrap = Callable[[str, str], tuple[str, str]]


def _unwrapped(shared: str, rest: str) -> tuple[str, str]:
    return shared, rest


def build(
    *,
    task: Task,
    template: str,
    labels: list[str] | None = None,
    answers: str | None = None,
    wrap: Wrap = _unwrapped,
    format_name: str = "none",
    format_note: str = "",
    instances: list[Instance] | None = None,
) -> Preview:
    """Validate the draft and, when it is valid, render it on sample instances, each wrapped by `wrap`
    (shared part, rest -> head, tail: a model's prompt format; by default the bare text)."""
    validation = templating.validate(template, task.template_fields(), max_chars=settings.TEMPLATE_MAX_CHARS)
    if labels is not None:
        validation.errors += label_errors(task, labels)
    validation.errors += answers_errors(labels, answers)
    preview = Preview(validation, format_name=format_name, format_note=format_note)
    if not validation.ok:
        return preview
    for instance in instances if instances is not None else sample_instances(task):
        shared, rest = templating.render_parts(template, instance.inputs, instance.options)
        head, tail = wrap(shared, rest)
        # The scorer's own answer texts, so the preview shows exactly what will be scored.
        preview.samples.append(
            Sample(instance, head + tail, list(answer_texts(task, labels, instance, answers)), instance.gold)
        )
    return preview
