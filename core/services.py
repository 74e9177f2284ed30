from django.db import transaction
from django.utils import timezone

from core.models import WorkerPing


def worker_ping_send() -> WorkerPing:
    """Record a ping and enqueue it for a worker once the row is committed."""
    from core.tasks import worker_ping_answer

    ping = WorkerPing.objects.create()
    transaction.on_commit(lambda: worker_ping_answer.delay(ping.id))
    return ping


def worker_ping_answer(*, ping_id: int, worker: str) -> None:
    # A ping may be delivered twice; only the first answer counts.
    WorkerPing.objects.filter(id=ping_id, answered_at__isnull=True).update(
        answered_at=timezone.now(), worker=worker[:200]
    )
