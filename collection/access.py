"""Who may see and act on which phrasing. Every page, API endpoint, filter, export, similarity and duplicate
check that reads phrasings or their revisions starts from the querysets here, and every lookup of one goes
through a `get_<thing>_for_user` helper, so the rule lives in one place:

Approved phrasings are public. Pending, sent back (needs edit), rejected and retired ones are seen by their
author and by curators and admins only; to anyone else they do not exist (404, never 403, and never their
text, id or status in a list, a count of neighbours or an error message).
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404

from collection.models import Instruction, InstructionRevision
from core import roles

VIEW = "view"
EDIT = "edit"
REVIEW = "review"
ACTIONS = (VIEW, EDIT, REVIEW)


def _visible(user, *, through: str = "") -> Q:
    """The rule for users who are not curators, as a filter on `through` (a path to an Instruction)."""
    visible = Q(**{f"{through}status": Instruction.Status.APPROVED})
    if user.is_authenticated:
        visible |= Q(**{f"{through}author": user})
    return visible


def instructions_visible_to(user) -> QuerySet[Instruction]:
    phrasings = Instruction.objects.all()
    if roles.is_curator(user):
        return phrasings
    return phrasings.filter(_visible(user))


def revisions_visible_to(user) -> QuerySet[InstructionRevision]:
    """A revision is seen by whoever sees its phrasing (results are keyed on revisions)."""
    revisions = InstructionRevision.objects.all()
    if roles.is_curator(user):
        return revisions
    return revisions.filter(_visible(user, through="instruction__"))


def can_edit_instruction(user, instruction: Instruction) -> bool:
    """Authors edit their own phrasings while they wait for review or after a curator asked for an edit;
    admins may fix any such phrasing. Reviewed phrasings are fixed: their results belong to their text."""
    if instruction.status not in (Instruction.Status.PENDING, Instruction.Status.NEEDS_EDIT):
        return False
    return roles.is_admin(user) or (user.is_authenticated and instruction.author_id == user.id)


def can_tag(user, instruction: Instruction) -> bool:
    """Tags describe a phrasing, not its text, and score nothing again: its author may tag it in any status,
    and curators and admins may correct anyone's tags (their own phrasings' too)."""
    if not user.is_authenticated:
        return False
    return instruction.author_id == user.id or roles.is_curator(user) or roles.is_admin(user)


def can_review(user, instruction: Instruction) -> bool:
    """Curators review phrasings, never their own, nor one whose current text they wrote (an admin's fix of
    another's phrasing, can_edit_instruction). Which decisions the phrasing's status allows is the review
    service's business (collection.services.instruction_review)."""
    return (
        roles.is_curator(user)
        and instruction.author_id != user.id
        and not wrote_current_text(user, instruction)
    )


def wrote_current_text(user, instruction: Instruction) -> bool:
    revision = instruction.current_revision
    return revision is not None and revision.created_by_id is not None and revision.created_by_id == user.id


def not_reviewable_by(user) -> Q:
    """can_review's refusals of a curator as a filter on phrasings: their own, and those whose current text
    they wrote."""
    return Q(author=user) | Q(current_revision__created_by=user)


def get_instruction_for_user(user, instruction_id: int, *, action: str = VIEW) -> Instruction:
    """The phrasing, if the user may see it (else 404) and may do `action` to it (else PermissionDenied).

    `edit`: its author (or an admin) while it is pending or sent back. `review`: curators; a user who can
    never review is refused before the lookup, so the answer does not depend on whether the phrasing
    exists. Whether this curator may decide on this phrasing (not their own, not in this status) is left to
    the review service, which says why not."""
    if action not in ACTIONS:
        raise ValueError(f"Unknown action {action!r}; one of {', '.join(ACTIONS)}.")
    if action == REVIEW and not roles.is_curator(user):
        raise PermissionDenied("Only curators review phrasings.")
    phrasings = instructions_visible_to(user).select_related(
        "task__benchmark", "collection", "current_revision", "author", "reviewer"
    )
    instruction = phrasings.filter(id=instruction_id).first()
    if instruction is None:
        raise Http404("No such phrasing.")
    if action == EDIT and not can_edit_instruction(user, instruction):
        if instruction.author_id == user.id or roles.is_admin(user):
            raise PermissionDenied(
                f"This phrasing is {instruction.get_status_display().lower()}, so its text can no longer be "
                "edited: a reviewed phrasing keeps the text it was decided on. Write a new phrasing instead."
            )
        raise PermissionDenied("Only the author edits a phrasing, and only while it waits for review.")
    return instruction
