"""Celery tasks for the `gpu` queue: thin wrappers that take ids and call a service."""

from celery import shared_task
from django.db import InterfaceError, OperationalError

from evaluation import services

# The database went away: mid-job (the services turn that into their Transient errors after handing the job
# back) or before the job was even claimed. Either way the job is retried, with backoff, for as long as the
# database stays down: giving up would leave it queued with a message already spent.
DATABASE_DOWN = (OperationalError, InterfaceError)


def _backoff(retries: int) -> int:
    return min(600, 10 * 2**retries)  # 10 s, 20 s, ... up to 10 minutes


@shared_task(bind=True, name="evaluation.tasks.score_run", max_retries=None)
def score_run(self, run_id: int) -> None:
    try:
        services.scoring_run_execute(
            run_id=run_id, task_id=self.request.id or "eager", worker=self.request.hostname or "eager"
        )
    except (services.TransientScoringError, *DATABASE_DOWN) as exc:
        raise self.retry(exc=exc, countdown=_backoff(self.request.retries))


@shared_task(bind=True, name="evaluation.tasks.train_softprompt", max_retries=None)
def train_softprompt(self, soft_prompt_id: int) -> None:
    from evaluation import softprompts

    try:
        softprompts.softprompt_train_execute(
            soft_prompt_id=soft_prompt_id, task_id=self.request.id or "eager", worker=self.request.hostname or "eager"
        )
    except (softprompts.TransientTrainingError, *DATABASE_DOWN) as exc:
        raise self.retry(exc=exc, countdown=_backoff(self.request.retries))


# Named outside "evaluation.tasks.*" so the route to the gpu queue does not match: aggregates are light work
# for the `default` queue.
@shared_task(
    name="evaluation.refresh_aggregates", autoretry_for=DATABASE_DOWN, retry_backoff=10, retry_backoff_max=600,
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
