"""Writes for benchmarks, tasks, instances and phrasings. Views, commands and importers call these."""

from __future__ import annotations

import logging
import math
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from collection import access, events, similarity, templating
from collection.answers import answers_for
from collection.models import (
    Collection,
    Instance,
    Instruction,
    InstructionRevision,
    PhrasingTag,
    Task,
    normalised_key,
    phrasing_key,
    revision_hash,
)
from core import roles
from core.errors import ApplicationError, Conflict, RateLimited

log = logging.getLogger(__name__)

CROWD_COLLECTION = "crowd"


class InvalidTemplate(ApplicationError):
    pass


class DuplicatePhrasing(ApplicationError):
    pass


def template_check(
    *, task: Task, template: str, labels: list[str] | None = None, answers: str | None = None
) -> templating.Validation:
    """Validate a phrasing for a task; raises InvalidTemplate with every problem found."""
    result = templating.validate(template, task.template_fields(), max_chars=settings.TEMPLATE_MAX_CHARS)
    if labels is not None:
        result.errors += label_errors(task, labels)
    result.errors += answers_errors(labels, answers)
    if not result.ok:
        raise InvalidTemplate(f"The phrasing for {task} is not valid.", details=result.errors)
    return result


def label_errors(task: Task, labels: list[str]) -> list[str]:
    if not isinstance(labels, list) or not all(isinstance(label, str) and label.strip() for label in labels):
        return ["Label words must be a list of non-empty texts."]
    if controls := templating.direction_controls("".join(labels)):
        return [f"The label words contain invisible text-direction controls ({controls}); remove them."]
    if len(labels) != len(task.label_space):
        return [
            f"Give one label word per task label: {len(task.label_space)} "
            f"({', '.join(task.label_space)}), not {len(labels)}."
        ]
    if len(set(labels)) != len(labels):
        return ["Label words must differ from each other, or the answer is ambiguous."]
    return []


def answers_errors(labels: list[str] | None, answers: str | None) -> list[str]:
    """Label words and declared answers must agree: words need label words, the other kinds take none."""
    if answers is None:
        return []
    if answers not in InstructionRevision.Answers.values:
        return [f"Answers must be one of: {', '.join(InstructionRevision.Answers.values)}."]
    if answers == InstructionRevision.Answers.WORDS and not labels:
        return ["Give the label words the phrasing asks for, or answer with the task's answers."]
    if answers != InstructionRevision.Answers.WORDS and labels:
        return ["Label words are only scored when the phrasing answers with its label words."]
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
    answers: str | None = None,
    status: str = Instruction.Status.PENDING,
    prompt_format: str = Instruction.Format.ANY,
    submitted: bool = False,
) -> Instruction:
    """Create a phrasing with its first revision. Imported phrasings name a source instead of an author.
    `answers` None: the phrasing's label words when it has any, else the task's answers. `submitted`: its
    author wrote it on the site (instruction_submit), so it counts against their SUBMISSIONS_PER_HOUR."""
    if author is None and not source:
        raise ApplicationError("A phrasing needs an author or an external source.")
    template_check(task=task, template=template, labels=labels, answers=answers)
    if prompt_format not in Instruction.Format.values:
        raise ApplicationError(f"Unknown prompt format {prompt_format!r}.")
    with transaction.atomic():
        instruction = Instruction.objects.create(
            task=task,
            collection=collection,
            author=author,
            source=source,
            external_id=external_id,
            status=status,
            prompt_format=prompt_format,
            submitted=submitted,
            stable_key=phrasing_key(
                benchmark_slug=task.benchmark.slug, task_slug=task.slug, template=template
            ),
        )
        revision = InstructionRevision.objects.create(
            instruction=instruction,
            number=1,
            template=template,
            labels=labels,
            answers=answers_for(labels, answers),
            created_by=author,
        )
        instruction.current_revision = revision
        instruction.save(update_fields=["current_revision", "updated_at"])
        _embed_on_commit(revision.id)
    return instruction


def instruction_revise(
    *,
    instruction: Instruction,
    template: str,
    labels: list[str] | None = None,
    answers: str | None = None,
    by=None,
) -> InstructionRevision:
    """Point the phrasing at a revision with this text: an existing one if the text is unchanged or was
    used before (so its results are reused), else a new immutable revision."""
    template_check(task=instruction.task, template=template, labels=labels, answers=answers)
    answers = answers_for(labels, answers)
    with transaction.atomic():
        instruction = Instruction.objects.select_for_update().get(pk=instruction.pk)
        content_hash = revision_hash(template, labels, answers)
        revision = instruction.revisions.filter(content_hash=content_hash).first()
        _reviewed_text_check(instruction, revision)
        if revision is None:
            last = instruction.revisions.order_by("-number").values_list("number", flat=True).first() or 0
            revision = InstructionRevision.objects.create(
                instruction=instruction,
                number=last + 1,
                template=template,
                labels=labels,
                answers=answers,
                created_by=by,
            )
        if instruction.current_revision_id != revision.id:
            instruction.current_revision = revision
            instruction.save(update_fields=["current_revision", "updated_at"])
            _embed_on_commit(revision.id)
    return revision


def _reviewed_text_check(instruction: Instruction, revision: InstructionRevision | None) -> None:
    """A decided phrasing keeps the text it was decided on (its results, or its refusal, belong to that
    text); the database holds the same rule (instruction_decided_text_is_reviewed_text). Phrasings approved
    by an import rather than a review (no reviewed revision) may be brought up to date by the import."""
    if instruction.status == Instruction.Status.PENDING or instruction.reviewed_revision_id is None:
        return
    if revision is not None and revision.id == instruction.reviewed_revision_id:
        return
    raise Conflict(
        f"Phrasing #{instruction.id} is {instruction.get_status_display().lower()} as reviewed; its text "
        "cannot change. Nothing was saved."
    )


REVIEW_DECISIONS = (
    Instruction.Status.APPROVED,
    Instruction.Status.REJECTED,
    Instruction.Status.NEEDS_EDIT,
    Instruction.Status.RETIRED,
)


# What a review may decide, by the phrasing's status now. Approving, rejecting and asking for an edit are
# decisions on a pending phrasing, one per text: a phrasing sent back waits for its author's edit, which
# makes it pending again, and the next decision is on the edited text (so two curators deciding at once
# cannot both be taken, one sending it back and the other approving the same text). Once approved, its
# results are published and it can only be withdrawn (retired), and a retired one reinstated (approved
# again, its results reused). Rejected is final: a new text is a new phrasing.
REVIEWABLE = (Instruction.Status.PENDING,)
DECISIONS_FROM = {
    # A retired phrasing may be reinstated (approved again): its unchanged revision's results are reused.
    Instruction.Status.APPROVED: (*REVIEWABLE, Instruction.Status.RETIRED),
    Instruction.Status.REJECTED: REVIEWABLE,
    Instruction.Status.NEEDS_EDIT: REVIEWABLE,
    Instruction.Status.RETIRED: (Instruction.Status.APPROVED,),
}


def _decision_check(instruction: Instruction, status: str) -> None:
    if instruction.status in DECISIONS_FROM[status]:
        return
    current = instruction.get_status_display().lower()
    if status == Instruction.Status.RETIRED:
        raise ApplicationError(f"Only an approved phrasing can be retired; this one is {current}.")
    if instruction.status == Instruction.Status.NEEDS_EDIT:
        who = f" by {instruction.reviewer.username}" if instruction.reviewer else ""
        raise ApplicationError(
            f"This phrasing was sent back for an edit{who}: this text has been decided on. It waits for its "
            "author's edit, and the next decision is on the edited text."
        )
    if instruction.status == Instruction.Status.APPROVED:
        raise ApplicationError(
            "This phrasing is approved: its results are published, so it can only be retired, not "
            f"{Instruction.Status(status).label.lower()}."
        )
    raise ApplicationError(
        f"This phrasing is {current}; only a pending phrasing, or one sent back for an edit, can be "
        "approved, rejected or sent back."
    )


def about(instruction_id: int, message: str) -> str:
    """A message for a list of outcomes, naming its phrasing once ("Phrasing #3: ..."), not twice when the
    message already starts with the name (StaleRevision's does)."""
    name = f"Phrasing #{instruction_id}"
    return message if message.startswith(name + " ") else f"{name}: {message}"


class StaleRevision(Conflict):
    """The phrasing was edited after the reviewer read it: the decision would apply to a text they never saw."""


def _revision_check(current: Instruction, revision: int | None) -> None:
    if revision is None or current.current_revision_id == revision:
        return
    text = current.current_revision.template if current.current_revision else ""
    number = current.current_revision.number if current.current_revision else 0
    raise StaleRevision(
        f"Phrasing #{current.id} was edited after you read it; it now reads (revision {number}):\n{text}\n"
        "Nothing was decided. Read the new text and decide again.",
        extra={"revision": current.current_revision_id, "template": text},
    )


def instruction_review(
    *, instruction: Instruction, reviewer, status: str, reason: str = "", revision: int | None = None
) -> Instruction:
    """Approve, reject (with a reason) or ask for an edit (with a reason) while a phrasing waits for review;
    retire it once approved, and reinstate (approve) a retired one. Nobody reviews their own phrasing. The
    pages, the API, bulk review and admin actions all decide here, so they cannot disagree."""
    if status not in REVIEW_DECISIONS:
        raise ApplicationError(f"'{status}' is not a review decision.")
    with transaction.atomic():
        # Decide on the row as it is now, locked, so concurrent decisions on one phrasing are serialised: the
        # first decides, the others find it decided. `revision` is the one the reviewer read (the pages and
        # the API always name it); if the author has edited since, nothing is decided.
        current = (
            Instruction.objects.select_for_update(of=("self",))
            .select_related("current_revision", "reviewer")
            .get(pk=instruction.pk)
        )
        if not access.can_review(reviewer, current):
            if current.author_id == reviewer.id:
                raise ApplicationError("You cannot review your own phrasing; another curator has to.")
            if access.wrote_current_text(reviewer, current):
                raise ApplicationError(
                    "You wrote this phrasing's current text (an edit of yours); another curator has to review it."
                )
            raise ApplicationError("Only curators can review phrasings.")
        _decision_check(current, status)
        _revision_check(current, revision)
        if status == Instruction.Status.REJECTED and not reason.strip():
            raise ApplicationError("Say why the phrasing is rejected, so its author can improve it.")
        if status == Instruction.Status.NEEDS_EDIT and not reason.strip():
            raise ApplicationError("Say what to change, so its author knows what to edit.")
        if status == Instruction.Status.NEEDS_EDIT and current.author_id is None:
            raise ApplicationError("Only phrasings written here have an author to ask for an edit.")
        no_text = not current.text_available or current.current_revision_id is None
        if status == Instruction.Status.APPROVED and no_text:
            raise ApplicationError(
                "This phrasing is known only from published results; there is no text to approve."
            )
        if status == Instruction.Status.APPROVED:
            # Texts stored before direction controls were refused (templating.validate) still hold them.
            revision = current.current_revision
            if controls := templating.direction_controls(revision.template + "".join(revision.labels or [])):
                raise ApplicationError(
                    f"This phrasing's text holds invisible text-direction controls ({controls}): a reader "
                    "sees other text than the model reads. Ask for an edit, or reject it."
                )
        was_approved = current.status == Instruction.Status.APPROVED
        # Decided on the locked row, never on the caller's copy, which may hold an older revision.
        current.status = status
        current.reviewer = reviewer
        current.review_reason = reason.strip()
        current.reviewed_at = timezone.now()
        # The decision names its text; an edit can no longer swap it (instruction_edit, and the database's
        # instruction_decided_text_is_reviewed_text).
        current.reviewed_revision_id = current.current_revision_id
        current.save(
            update_fields=[
                "status",
                "reviewer",
                "review_reason",
                "reviewed_at",
                "reviewed_revision",
                "updated_at",
            ]
        )
        # What follows in evaluation (scoring, retraining, new figures) is in evaluation/receivers.py.
        if status == Instruction.Status.APPROVED:
            events.phrasing_approved.send(sender=Instruction, instruction=current, by=reviewer)
        elif was_approved:
            # Retiring withdraws a published phrasing: its results leave the figures.
            events.phrasing_withdrawn.send(sender=Instruction, instruction=current)
    instruction.refresh_from_db()
    return instruction


@dataclass
class ReviewOutcome:
    instruction: Instruction
    error: str = ""
    stale: bool = False  # refused because the text was not the one the reviewer read


def instructions_review_bulk(
    *, instructions, reviewer, status: str, reason: str = "", revisions: dict[int, int] | None = None
) -> list[ReviewOutcome]:
    """Review several phrasings with one decision. Each is reviewed in its own transaction, so one refusal
    (say, the curator's own phrasing, or one edited since it was read) leaves the others decided; every
    outcome is reported. `revisions` maps each phrasing's id to the revision the reviewer read."""
    outcomes = []
    for instruction in instructions:
        try:
            revision = None if revisions is None else revisions.get(instruction.id, 0)
            instruction_review(
                instruction=instruction, reviewer=reviewer, status=status, reason=reason, revision=revision
            )
            outcomes.append(ReviewOutcome(instruction))
        except ApplicationError as exc:
            outcomes.append(ReviewOutcome(instruction, exc.message, stale=isinstance(exc, StaleRevision)))
    return outcomes


# --- Authoring -------------------------------------------------------------------------------------------


def duplicate_check(*, task: Task, template: str, user, exclude_id: int | None = None) -> None:
    """Refuse a text that another phrasing of the task already has, ignoring whitespace and case. Every
    phrasing that is not retired counts, seen or not; but a twin `user` may not see is not described (no
    id, text or status), only said to exist."""
    twins = (
        Instruction.objects.filter(task=task, current_revision__normalised_hash=normalised_key(template))
        .exclude(id=exclude_id)
        .exclude(status=Instruction.Status.RETIRED)
        .order_by("id")
    )
    if not twins.exists():
        return
    twin = twins.filter(id__in=access.instructions_visible_to(user).values("id")).first()
    if twin is None:
        raise DuplicatePhrasing(
            "A phrasing like this is already under review for this task (ignoring spaces and capitals). "
            "Change the wording."
        )
    raise DuplicatePhrasing(
        f"This task already has this phrasing (#{twin.id}, {twin.get_status_display().lower()}), "
        "ignoring spaces and capitals. Change the wording, or look at the existing one."
    )


RATE_WINDOW = timedelta(hours=1)


def _lock_author(author) -> None:
    # Lock the author's row so that two submissions (or uploads) at once cannot both pass the count.
    get_user_model().objects.select_for_update().filter(pk=author.pk).first()


def _seconds_until_room(recent) -> int:
    """Seconds until the oldest of `recent` (phrasings in the window) leaves it; the window if none."""
    oldest = recent.order_by("created_at").values_list("created_at", flat=True).first()
    if oldest is None:
        return int(RATE_WINDOW.total_seconds())
    return max(1, math.ceil((oldest + RATE_WINDOW - timezone.now()).total_seconds()))


def _submissions_check(author) -> None:
    _lock_author(author)
    # What the author wrote here: phrasings uploaded by a curator (UPLOADS_PER_HOUR limits those) or imported
    # by an admin and credited to them are not theirs to wait for.
    recent = Instruction.objects.filter(
        author=author, submitted=True, created_at__gte=timezone.now() - RATE_WINDOW
    )
    count = recent.count()
    limit = settings.SUBMISSIONS_PER_HOUR
    if count >= limit:
        raise RateLimited(
            f"You have submitted {count} phrasings in the last hour; the limit is {limit} per hour. "
            "Your draft is not lost: submit it again later.",
            retry_after=_seconds_until_room(recent),
        )


def uploads_lock(uploader) -> None:
    """Take at the start of an upload's transaction: concurrent uploads by one curator then count in turn."""
    _lock_author(uploader)


def uploads_check(*, uploader, started) -> None:
    """At the end of an upload's transaction (after uploads_lock): refuse the upload, so that its rows roll
    back, if it brings the curator past UPLOADS_PER_HOUR phrasings in the rolling hour. The phrasings it
    created (`created_at` >= `started`) count along with those uploaded or submitted before it."""
    since = timezone.now() - RATE_WINDOW
    mine = Instruction.objects.filter(author=uploader, created_at__gte=since)
    added = mine.filter(created_at__gte=started).count()
    total = mine.count()
    limit = settings.UPLOADS_PER_HOUR
    if added and total > limit:
        raise RateLimited(
            f"This file adds {added} phrasings to the {total - added} you added in the last hour; the limit "
            f"is {limit} per hour. Nothing was imported: upload it later, or in smaller files.",
            retry_after=_seconds_until_room(mine.filter(created_at__lt=started)),
        )


# More tags than this say little about what a phrasing varies.
MAX_TAGS = 6


def tags_check(slugs) -> list[PhrasingTag]:
    """The tags named by these slugs (repeats ignored); an unknown slug is refused with the vocabulary."""
    wanted = list(dict.fromkeys(str(slug).strip() for slug in slugs if str(slug).strip()))
    if len(wanted) > MAX_TAGS:
        raise ApplicationError(f"At most {MAX_TAGS} tags per phrasing; {len(wanted)} given.")
    found = {tag.slug: tag for tag in PhrasingTag.objects.filter(slug__in=wanted)}
    unknown = [slug for slug in wanted if slug not in found]
    if unknown:
        known = ", ".join(PhrasingTag.objects.values_list("slug", flat=True))
        raise ApplicationError(f"Unknown tag {unknown[0]!r}; choose from: {known}.")
    return [found[slug] for slug in wanted]


def instruction_tag(*, instruction: Instruction, tags, by) -> Instruction:
    """Replace a phrasing's tags (collection.access.can_tag says who may). Nothing is scored again: tags
    are read when figures are grouped by them."""
    if not access.can_tag(by, instruction):
        raise PermissionDenied("Only the phrasing's author or a curator can tag it.")
    chosen = tags_check(tags)
    instruction.tags.set(chosen)
    return instruction


def instruction_submit(
    *,
    task: Task,
    template: str,
    author,
    labels: list[str] | None = None,
    answers: str | None = None,
    tags=(),
) -> Instruction:
    """An author's new phrasing for a task: validated, not a duplicate, within the rate limit. It waits in
    the curators' queue; its embedding is computed in the background once it is saved."""
    if not roles.can_submit(author):
        raise ApplicationError("Sign up or log in to write phrasings.")
    if not task.input_fields:
        raise ApplicationError(f"{task} takes no phrasings of its own; write them for one of its tasks.")
    template_check(task=task, template=template, labels=labels, answers=answers)
    chosen = tags_check(tags)
    with transaction.atomic():
        _submissions_check(author)
        duplicate_check(task=task, template=template, user=author)
        instruction = instruction_create(
            task=task,
            template=template,
            labels=labels,
            answers=answers,
            author=author,
            collection=Collection.objects.get(slug=CROWD_COLLECTION),
            submitted=True,
        )
        instruction.tags.set(chosen)
    return instruction


def instruction_edit(
    *,
    instruction: Instruction,
    template: str,
    by,
    labels: list[str] | None = None,
    answers: str | None = None,
    tags=None,
) -> Instruction:
    """The author's edit of a pending phrasing, or of one a curator sent back (it returns to the queue).

    Editing and deciding serialise on the phrasing's row (instruction_review locks it too): the edit checks
    the status on the row as it is once locked, not on the caller's copy, so a decision that commits first
    refuses the edit (409) and an approval is never followed by a swapped text."""
    _edit_check(by, instruction)
    template_check(task=instruction.task, template=template, labels=labels, answers=answers)
    chosen = None if tags is None else tags_check(tags)  # None: the tags stay as they are
    with transaction.atomic():
        current = (
            Instruction.objects.select_for_update(of=("self",))
            .select_related("task", "reviewer")
            .get(pk=instruction.pk)
        )
        if not access.can_edit_instruction(by, current):
            if current.status != instruction.status:
                who = f" ({current.reviewer.username})" if current.reviewer else ""
                raise Conflict(
                    f"A curator{who} decided on this phrasing while you were editing it: it is now "
                    f"{current.get_status_display().lower()}. Nothing was saved.",
                    extra={"status": current.status, "revision": current.current_revision_id},
                )
            _edit_check(by, current)
        duplicate_check(task=current.task, template=template, user=by, exclude_id=current.id)
        if current.status == Instruction.Status.NEEDS_EDIT:
            # Back to the queue first: a phrasing that stands sent back keeps the text it was sent back on.
            current.status = Instruction.Status.PENDING
            current.save(update_fields=["status", "updated_at"])
        revision = instruction_revise(
            instruction=current, template=template, labels=labels, answers=answers, by=by
        )
        if revision.id == current.reviewed_revision_id:
            # Sending back the text a curator sent back would ask for a second decision on it.
            raise ApplicationError(
                "This is the text a curator sent back for an edit; change it before sending it for review again."
            )
        if chosen is not None:
            current.tags.set(chosen)
    instruction.refresh_from_db()
    return instruction


def _edit_check(by, instruction: Instruction) -> None:
    if access.can_edit_instruction(by, instruction):
        return
    if instruction.author_id == by.id:
        raise ApplicationError(
            f"This phrasing is {instruction.get_status_display().lower()}; only pending phrasings can be edited."
        )
    raise ApplicationError("You can only edit your own phrasings.")


_batching = threading.local()


@contextmanager
def embeddings_batched():
    """Within this block (an upload, an import), the embeddings of new texts are queued together once the
    transaction commits, in jobs of similarity.EMBED_BATCH: 2,000 uploaded phrasings send 20 jobs, not
    2,000. Nested blocks leave the sending to the outermost."""
    if getattr(_batching, "ids", None) is not None:
        yield
        return
    _batching.ids = ids = []
    try:
        yield
    finally:
        _batching.ids = None
    similarity.revisions_queue(ids)  # sent once the transaction commits


def _embed_on_commit(revision_id: int) -> None:
    """Every way a phrasing or a new text enters comes through here (instruction_create, instruction_revise).
    If the broker cannot be reached, nothing is lost: a check queues what is missing again (and embeds a few
    itself)."""
    ids = getattr(_batching, "ids", None)
    if ids is not None:
        ids.append(revision_id)
    else:
        similarity.revisions_queue([revision_id])  # sent once the transaction commits


@dataclass
class InstanceUpsert:
    created: int = 0
    unchanged: int = 0
    widened: int = 0  # existing instances given new input fields
    reordered: int = 0  # existing instances that kept an earlier option order


def instances_upsert(*, task: Task, rows: list[dict]) -> InstanceUpsert:
    """Create the instances that do not exist yet.

    Each row has source_id, split, inputs, options, gold. An existing source_id with different content is
    an error (silently changing an instance would change what past predictions mean), with two exceptions
    that change no prompt already scored: new input fields are added to an instance (a later version of the
    importer splits the input into more fields), and an instance whose options differ only in order, with
    the same gold text, keeps its order.
    """
    existing = {
        source_id: (pk, split, inputs, options, gold)
        for pk, source_id, split, inputs, options, gold in Instance.objects.filter(task=task).values_list(
            "pk", "source_id", "split", "inputs", "options", "gold"
        )
    }
    result = InstanceUpsert()
    new, widened, conflicts = [], [], []
    for row in rows:
        current = existing.get(row["source_id"])
        if current is None:
            new.append(Instance(task=task, **row))
            continue
        pk, split, inputs, options, gold = current
        if split != row["split"] or any(row["inputs"].get(name) != text for name, text in inputs.items()):
            conflicts.append(row["source_id"])
            continue
        if options != row["options"]:
            if sorted(options) != sorted(row["options"]) or options[gold] != row["options"][row["gold"]]:
                conflicts.append(row["source_id"])
                continue
            result.reordered += 1
        elif gold != row["gold"]:
            conflicts.append(row["source_id"])
            continue
        if row["inputs"].keys() - inputs.keys():
            widened.append(Instance(pk=pk, inputs=row["inputs"]))
        else:
            result.unchanged += 1
    if conflicts:
        raise ApplicationError(
            f"{len(conflicts)} instance(s) of {task} already exist with different content "
            f"(first: {conflicts[0]}); refusing to change data that results may depend on."
        )
    Instance.objects.bulk_create(new, batch_size=2000)
    Instance.objects.bulk_update(widened, ["inputs"], batch_size=2000)
    result.created, result.widened = len(new), len(widened)
    return result


def task_eval_sample_set(*, task: Task, size: int | None, by) -> Task:
    """Score the task's phrasings on all its eval instances (size None) or on a fixed sample of `size`.
    Admins only: a larger sample is bulk work on every model. Cells already scored are kept either way."""
    if not roles.can_manage_tasks(by):
        raise ApplicationError("Only admins can change a task's evaluation sample.")
    if size is not None and size < 1:
        raise ApplicationError("A sample needs at least one instance.")
    task.eval_sample_size = size
    task.save(update_fields=["eval_sample_size"])
    return task
