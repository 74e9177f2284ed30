"""Celery tasks for the `gpu` queue: thin wrappers that take ids and call a service."""

from celery import shared_task
from celery.exceptions import Reject
from django.conf import settings
from django.db import InterfaceError, OperationalError

from evaluation import leases, services
from evaluation.models import ScoringRun, SoftPrompt

DATABASE_ERRORS = (OperationalError, InterfaceError)
# An error the database answered with (not a lost connection) may never go away; after this many retries the
# job fails with it, and a person can retry it.
ANSWERED_ERROR_RETRIES = 8


def _backoff(retries: int) -> int:
    return min(600, 10 * 2**retries)  # 10 s, 20 s, ... up to 10 minutes


def _retry_on_database_error(task, exc: Exception, *, model, pk: int, resume_token: str | None) -> None:
    """The database failed under a job: mid-job (the service handed the job back and raised
    DatabaseInterrupted with its claim) or before the claim. Retry with backoff, for as long as the database
    cannot be reached; an error it answered with gets ANSWERED_ERROR_RETRIES, then fails the job."""
    cause = exc
    if isinstance(exc, leases.DatabaseInterrupted):
        resume_token, cause = str(exc.token), exc.__cause__
    retries = task.request.retries
    if not leases.connection_lost(cause) and retries >= ANSWERED_ERROR_RETRIES:
        leases.fail_handed_back(model, pk, resume_token, f"Database error after {retries + 1} attempts: {cause}")
        return
    try:
        raise task.retry(exc=exc, countdown=_backoff(retries), kwargs={"resume_token": resume_token})
    except Reject:
        leases.mark_unsent(model, pk)  # the retry never reached the broker: the outbox sweep takes over
        raise


def _check_back_if_held(task, *, model, pk: int) -> None:
    """This delivery found the job running elsewhere: a copy sent while its worker lives (Redis redelivers
    after CELERY_VISIBILITY_TIMEOUT; RabbitMQ at once when a worker's connection drops, dead or not). Look
    again once the lease could have lapsed, and take the job over then if its worker has died."""
    if not task.request.is_eager and leases.is_running(model, pk):
        raise task.retry(countdown=settings.SCORING_LEASE_SECONDS + 1, kwargs={})


@shared_task(bind=True, name="evaluation.tasks.score_run", max_retries=None)
def score_run(self, run_id: int, resume_token: str | None = None) -> None:
    try:
        run = services.scoring_run_execute(
            run_id=run_id, task_id=self.request.id or "eager", worker=self.request.hostname or "eager",
            resume_token=resume_token,
        )
    except (leases.DatabaseInterrupted, *DATABASE_ERRORS) as exc:
        _retry_on_database_error(self, exc, model=ScoringRun, pk=run_id, resume_token=resume_token)
        return
    if run is None:
        _check_back_if_held(self, model=ScoringRun, pk=run_id)


@shared_task(bind=True, name="evaluation.tasks.train_softprompt", max_retries=None)
def train_softprompt(self, soft_prompt_id: int, resume_token: str | None = None) -> None:
    from evaluation import softprompts

    try:
        soft = softprompts.softprompt_train_execute(
            soft_prompt_id=soft_prompt_id, task_id=self.request.id or "eager",
            worker=self.request.hostname or "eager", resume_token=resume_token,
        )
    except (leases.DatabaseInterrupted, *DATABASE_ERRORS) as exc:
        _retry_on_database_error(self, exc, model=SoftPrompt, pk=soft_prompt_id, resume_token=resume_token)
        return
    if soft is None:
        _check_back_if_held(self, model=SoftPrompt, pk=soft_prompt_id)


# Named outside "evaluation.tasks.*" so the route to the gpu queue does not match: aggregates are light work
# for the `default` queue.
@shared_task(
    name="evaluation.refresh_aggregates", autoretry_for=DATABASE_ERRORS, retry_backoff=10, retry_backoff_max=600,
    max_retries=None,
)
def refresh_aggregates(variant_id: int, task_id: int) -> None:
    from evaluation.aggregates import aggregates_refresh

    aggregates_refresh(variant_id=variant_id, task_id=task_id)


# Light work on the `default` queue, sent every minute by the scheduler (CELERY_BEAT_SCHEDULE).
@shared_task(name="evaluation.sweep")
def sweep() -> None:
    from evaluation.services import scoring_runs_sweep
    from evaluation.softprompts import softprompts_sweep

    scoring_runs_sweep()
    softprompts_sweep()
