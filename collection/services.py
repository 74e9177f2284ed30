"""Writes for benchmarks, tasks, instances and phrasings. Views, commands and importers call these."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from collection import templating
from collection.models import Collection, Instance, Instruction, InstructionRevision, Task, revision_hash
from core import roles
from core.errors import ApplicationError


class InvalidTemplate(ApplicationError):
    pass


def template_check(*, task: Task, template: str, labels: list[str] | None = None) -> templating.Validation:
    """Validate a phrasing for a task; raises InvalidTemplate with every problem found."""
    result = templating.validate(template, task.template_fields(), max_chars=settings.TEMPLATE_MAX_CHARS)
    if labels is not None:
        result.errors += _label_errors(task, labels)
    if not result.ok:
        raise InvalidTemplate(f"The phrasing for {task} is not valid.", details=result.errors)
    return result


def _label_errors(task: Task, labels: list[str]) -> list[str]:
    if not isinstance(labels, list) or not all(isinstance(label, str) and label.strip() for label in labels):
        return ["Label words must be a list of non-empty texts."]
    if len(labels) != len(task.label_space):
        return [
            f"Give one label word per task label: {len(task.label_space)} "
            f"({', '.join(task.label_space)}), not {len(labels)}."
        ]
    if len(set(labels)) != len(labels):
        return ["Label words must differ from each other, or the answer is ambiguous."]
    return []


def instruction_create(
    *,
    task: Task,
    template: str,
    collection: Collection,
    author=None,
    source: str = "",
    external_id: str = "",
    labels: list[str] | None = None,
    status: str = Instruction.Status.PENDING,
) -> Instruction:
    """Create a phrasing with its first revision. Imported phrasings name a source instead of an author."""
    if author is None and not source:
        raise ApplicationError("A phrasing needs an author or an external source.")
    template_check(task=task, template=template, labels=labels)
    with transaction.atomic():
        instruction = Instruction.objects.create(
            task=task,
            collection=collection,
            author=author,
            source=source,
            external_id=external_id,
            status=status,
        )
        revision = InstructionRevision.objects.create(
            instruction=instruction, number=1, template=template, labels=labels, created_by=author
        )
        instruction.current_revision = revision
        instruction.save(update_fields=["current_revision", "updated_at"])
    return instruction


def instruction_revise(
    *, instruction: Instruction, template: str, labels: list[str] | None = None, by=None
) -> InstructionRevision:
    """Point the phrasing at a revision with this text: an existing one if the text is unchanged or was
    used before (so its results are reused), else a new immutable revision."""
    template_check(task=instruction.task, template=template, labels=labels)
    with transaction.atomic():
        instruction = Instruction.objects.select_for_update().get(pk=instruction.pk)
        content_hash = revision_hash(template, labels)
        revision = instruction.revisions.filter(content_hash=content_hash).first()
        if revision is None:
            last = instruction.revisions.order_by("-number").values_list("number", flat=True).first() or 0
            revision = InstructionRevision.objects.create(
                instruction=instruction, number=last + 1, template=template, labels=labels, created_by=by
            )
        if instruction.current_revision_id != revision.id:
            instruction.current_revision = revision
            instruction.save(update_fields=["current_revision", "updated_at"])
    return revision


def instruction_review(*, instruction: Instruction, reviewer, status: str, reason: str = "") -> Instruction:
    """Approve, reject (with a reason) or retire a phrasing. Nobody reviews their own phrasing."""
    if not roles.can_review(reviewer, instruction):
        if instruction.author_id == reviewer.id:
            raise ApplicationError("You cannot review your own phrasing; another curator has to.")
        raise ApplicationError("Only curators can review phrasings.")
    if status not in {Instruction.Status.APPROVED, Instruction.Status.REJECTED, Instruction.Status.RETIRED}:
        raise ApplicationError(f"'{status}' is not a review decision.")
    if status == Instruction.Status.REJECTED and not reason.strip():
        raise ApplicationError("Say why the phrasing is rejected, so its author can improve it.")
    from evaluation.aggregates import aggregates_enqueue_for_task
    from evaluation.services import scoring_on_approval

    was_approved = instruction.status == Instruction.Status.APPROVED
    with transaction.atomic():
        instruction.status = status
        instruction.reviewer = reviewer
        instruction.review_reason = reason.strip()
        instruction.reviewed_at = timezone.now()
        instruction.save(update_fields=["status", "reviewer", "review_reason", "reviewed_at", "updated_at"])
        if status == Instruction.Status.APPROVED and not was_approved:
            # Saved with the approval, sent to the workers once it commits (see evaluation.services).
            scoring_on_approval(instruction=instruction, by=reviewer)
        elif was_approved and status != Instruction.Status.APPROVED:
            # Its results leave the leaderboards: recompute the figures without it.
            aggregates_enqueue_for_task(task=instruction.task)
    return instruction


def instance_check(*, task: Task, inputs: dict, options: list, gold: int) -> list[str]:
    """Problems with an instance's data for its task, as messages; empty when it is sound."""
    problems = []
    if not isinstance(inputs, dict) or not all(isinstance(v, str) for v in inputs.values()):
        return ["inputs must map field names to texts"]
    missing = [f for f in task.input_fields if f not in inputs]
    if missing:
        problems.append("missing input fields: " + ", ".join(missing))
    if not isinstance(options, list) or len(options) < 2 or not all(isinstance(o, str) for o in options):
        problems.append("needs at least two answer options, as texts")
    elif not isinstance(gold, int) or not 0 <= gold < len(options):
        problems.append(f"gold option {gold!r} is not one of the {len(options)} options")
    elif task.answer_format == Task.AnswerFormat.LETTER and len(options) > len(task.label_space):
        problems.append(f"{len(options)} options but only {len(task.label_space)} letters in the label space")
    return problems


def instances_upsert(*, task: Task, rows: list[dict]) -> tuple[int, int]:
    """Create the instances that do not exist yet; returns (created, unchanged).

    Each row has source_id, split, inputs, options, gold. An existing source_id with different content is
    an error: silently changing an instance would change what past predictions mean.
    """
    existing = {
        source_id: (split, inputs, options, gold)
        for source_id, split, inputs, options, gold in Instance.objects.filter(task=task).values_list(
            "source_id", "split", "inputs", "options", "gold"
        )
    }
    new, unchanged, conflicts = [], 0, []
    for row in rows:
        current = existing.get(row["source_id"])
        if current is None:
            new.append(Instance(task=task, **row))
        elif current == (row["split"], row["inputs"], row["options"], row["gold"]):
            unchanged += 1
        else:
            conflicts.append(row["source_id"])
    if conflicts:
        raise ApplicationError(
            f"{len(conflicts)} instance(s) of {task} already exist with different content "
            f"(first: {conflicts[0]}); refusing to change data that results may depend on."
        )
    Instance.objects.bulk_create(new, batch_size=2000)
    return len(new), unchanged
