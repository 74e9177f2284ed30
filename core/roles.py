"""Roles and what each may do. Every permission decision in views, the API and admin actions asks here.

Three groups: authors write phrasings, curators review them, admins manage benchmarks, tasks and models.
Signing up makes a user an author. Superusers count as admins. Anonymous users may browse and read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collection.models import Instruction

AUTHOR = "author"
CURATOR = "curator"
ADMIN = "admin"
ROLES = (AUTHOR, CURATOR, ADMIN)


def role_names(user) -> set[str]:
    if not user.is_authenticated:
        return set()
    # Cached on the user object: templates and views ask several times per request.
    if not hasattr(user, "_role_names"):
        names = set(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
        if user.is_superuser:
            names.add(ADMIN)
        user._role_names = names
    return user._role_names


def is_admin(user) -> bool:
    return ADMIN in role_names(user)


def is_curator(user) -> bool:
    return bool({CURATOR, ADMIN} & role_names(user))


def can_submit(user) -> bool:
    return bool(role_names(user))


def can_view_instruction(user, instruction: Instruction) -> bool:
    """Approved phrasings are public; the others are seen by their author and by curators."""
    if instruction.status == instruction.Status.APPROVED:
        return True
    return is_curator(user) or (user.is_authenticated and instruction.author_id == user.id)


def can_edit_instruction(user, instruction: Instruction) -> bool:
    """Authors edit their own phrasings while they wait for review or after a curator asked for an edit;
    admins may fix any such phrasing. Reviewed phrasings are fixed: their results belong to their text."""
    if instruction.status not in (instruction.Status.PENDING, instruction.Status.NEEDS_EDIT):
        return False
    return is_admin(user) or (user.is_authenticated and instruction.author_id == user.id)


def can_review(user, instruction: Instruction) -> bool:
    """Curators review phrasings, never their own."""
    return is_curator(user) and instruction.author_id != user.id


def can_manage_tasks(user) -> bool:
    return is_admin(user)


def can_manage_runs(user) -> bool:
    """Curators and admins cancel and retry scoring runs."""
    return is_curator(user)


def can_manage_models(user) -> bool:
    """Admins register models and start scoring by hand."""
    return is_admin(user)
