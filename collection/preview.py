"""The authoring preview: a draft phrasing validated and rendered on a few real instances of its task,
exactly as a chosen model would receive it (its prompt format applied), with the answers it chooses among."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from django.conf import settings

from collection import selectors, templating
from collection.models import Instance, Task
from collection.services import label_errors
from evaluation.ml import prompts
from evaluation.services import answer_texts

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


def build(
    *, task: Task, template: str, labels: list[str] | None = None, model=None, instances: list[Instance] | None = None
) -> Preview:
    """Validate the draft and, when it is valid, render it on sample instances in `model`'s prompt format
    (a LanguageModel, or None for the bare text)."""
    validation = templating.validate(template, task.template_fields(), max_chars=settings.TEMPLATE_MAX_CHARS)
    if labels is not None:

        validation.errors += label_errors(task, labels)
    preview = Preview(validation, format_name=model.prompt_format if model else "none")
    if not validation.ok:
        return preview
    tokenizer = None
    if preview.format_name == "chat":
        tokenizer, problem = _chat_tokenizer(model.source, model.revision)
        if tokenizer is None:
            preview.format_name = "none"
            preview.format_note = f"{model.name}'s chat template could not be loaded ({problem}); shown unwrapped."
    for instance in instances if instances is not None else sample_instances(task):
        shared, rest = templating.render_parts(template, instance.inputs, instance.options)
        head, tail = prompts.wrap(shared, rest, preview.format_name, tokenizer)
        # The scorer's own answer texts, so the preview shows exactly what will be scored.
        preview.samples.append(Sample(instance, head + tail, list(answer_texts(task, labels, instance)), instance.gold))
    return preview


@functools.lru_cache(maxsize=4)
def _chat_tokenizer(source: str, revision: str):
    """A chat model's tokenizer, for its chat template; (None, reason) when it cannot be loaded here."""
    import transformers

    try:
        kwargs = {"revision": revision} if revision else {}
        tokenizer = transformers.AutoTokenizer.from_pretrained(source, **kwargs)
        prompts.chat_frame(tokenizer)
    except (OSError, ValueError) as exc:
        return None, str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return tokenizer, ""
