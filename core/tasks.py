from celery import shared_task

from core import services


@shared_task(name="core.worker_ping_answer", queue="default")
def worker_ping_answer(ping_id: int) -> None:
    services.worker_ping_answer(ping_id=ping_id, worker=worker_ping_answer.request.hostname or "eager")
