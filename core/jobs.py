"""Sending Celery jobs once the current transaction commits, so a worker never looks for a row that is not
committed yet, and so a broker that cannot be reached never fails the request that saved the work."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import transaction

log = logging.getLogger(__name__)


def send_on_commit(
    task,
    *args,
    what: str,
    countdown: int | None = None,
    sent: Callable[[], object] | None = None,
    unreachable: Callable[[], object] | None = None,
) -> None:
    """Send `task(*args)` after the commit. `sent` runs once the broker has accepted the job. When the broker
    cannot be reached the failure is logged and `unreachable` runs: each caller says why nothing is lost."""

    def send() -> None:
        from kombu.exceptions import OperationalError as BrokerError

        try:
            task.apply_async(args=args, countdown=countdown)
        except (BrokerError, OSError):
            log.warning("Could not reach the broker to send %s.", what, exc_info=True)
            if unreachable is not None:
                unreachable()
            return
        if sent is not None:
            sent()

    transaction.on_commit(send)
