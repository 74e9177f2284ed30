from datetime import timedelta

from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from core import jobs, roles
from core.errors import ApplicationError
from core.models import WorkerPing


def user_role_set(*, user, role: str) -> None:
    """Give a user exactly one role. Curators and admins get staff status, which Django admin asks for;
    authors lose it. Superusers stay superusers (they count as admins whatever their groups)."""
    if role not in roles.ROLES:
        raise ApplicationError(f"Unknown role {role!r}; choose one of: {', '.join(roles.ROLES)}.")
    with transaction.atomic():
        user.groups.remove(*Group.objects.filter(name__in=roles.ROLES))
        user.groups.add(Group.objects.get(name=role))
        user.is_staff = role != roles.AUTHOR or user.is_superuser
        user.save(update_fields=["is_staff"])
    if hasattr(user, "_role_names"):
        del user._role_names


# The status page is public and a ping is a job on the `default` queue, so asking again soon after returns the
# latest ping instead of queueing another: at most one ping per PING_INTERVAL, and while one waits unanswered
# (no worker, or all busy) none more for PING_WAIT. Twenty clicks, or requests, queue one job.
PING_INTERVAL = timedelta(seconds=10)
PING_WAIT = timedelta(minutes=5)


def worker_ping_send() -> WorkerPing:
    """Record a ping and enqueue it for a worker once the row is committed; or, within the limits above, the
    latest ping, which the status page shows as it shows a new one."""
    with transaction.atomic():
        # Locking the latest ping serialises two askers: the second finds the first's ping.
        latest = WorkerPing.objects.select_for_update().order_by("-created_at", "-id").first()
        if latest is not None:
            age = timezone.now() - latest.created_at
            if age < PING_INTERVAL or (latest.answered_at is None and age < PING_WAIT):
                return latest
        ping = WorkerPing.objects.create()
        jobs.send_on_commit("core.worker_ping_answer", ping.id, what=f"worker ping {ping.id}")
    return ping


def worker_ping_answer(*, ping_id: int, worker: str) -> None:
    # A ping may be delivered twice; only the first answer counts.
    WorkerPing.objects.filter(id=ping_id, answered_at__isnull=True).update(
        answered_at=timezone.now(), worker=worker[:200]
    )
