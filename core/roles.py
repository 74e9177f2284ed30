"""Roles and what each may do in general. Views, the API and admin actions ask here about roles; questions
about one object (may this user see or edit this phrasing, this run) are answered by the access modules of
the app that owns it (collection/access.py, evaluation/access.py), which build on these predicates.

Three groups: authors write phrasings, curators review them, admins manage benchmarks, tasks and models.
Signing up makes a user an author. Superusers count as admins. Anonymous users may browse and read.
"""

from __future__ import annotations

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


def can_manage_tasks(user) -> bool:
    return is_admin(user)


def can_manage_runs(user) -> bool:
    """Curators and admins cancel and retry scoring runs."""
    return is_curator(user)


def can_manage_models(user) -> bool:
    """Admins register models and start scoring by hand."""
    return is_admin(user)


def can_start_plans(user) -> bool:
    """Admins start (or discard) bulk work planned over the budget: they pay for the GPUs."""
    return is_admin(user)


def can_export_releases(user) -> bool:
    """Admins ask for dataset releases (evaluation/releases/export_jobs.py): each writes a copy of every
    prediction to disk. Anyone may download a finished one: it holds only what anonymous visitors see."""
    return is_admin(user)
