"""Celery tasks: thin wrappers that take ids and call a service. Each names its queue: `gpu` for what loads a
model (scoring, training, checking a new model; one worker process per GPU), `default` for light work. The
job kinds' tasks are made from their declarations (`job` on each model); their life as jobs is
core/jobs.py's."""

from celery import shared_task

from core import jobs
from evaluation.leaderboards import aggregates
from evaluation.models import LanguageModel, ModelCheck, ReleaseExport, ScoringRun, SoftPrompt
from evaluation.robustness import calibration

score_run = jobs.job_task(ScoringRun)
train_softprompt = jobs.job_task(SoftPrompt)
check_model = jobs.job_task(ModelCheck)
export_release = jobs.job_task(ReleaseExport)


@shared_task(
    name="evaluation.refresh_aggregates",
    queue="default",
    autoretry_for=jobs.DATABASE_ERRORS,
    retry_backoff=10,
    retry_backoff_max=600,
    max_retries=None,
)
def refresh_aggregates(variant_id: int, task_id: int) -> None:
    aggregates.aggregates_refresh(variant_id=variant_id, task_id=task_id)
    calibration.calibration_follow_base(variant_id=variant_id, task_id=task_id)


# No model is loaded: calibration reads the base model's stored scores (evaluation/robustness/calibration.py).
@shared_task(
    name="evaluation.calibrate",
    queue="default",
    autoretry_for=jobs.DATABASE_ERRORS,
    retry_backoff=10,
    retry_backoff_max=600,
    max_retries=None,
)
def calibrate(model_id: int) -> None:
    model = LanguageModel.objects.filter(id=model_id).first()
    if model is not None:  # deleted since it was queued
        calibration.variant_calibrate(model=model)


# Sent every SWEEP_SECONDS by the scheduler (CELERY_BEAT_SCHEDULE): the outbox sweep of every job kind.
@shared_task(name="evaluation.sweep", queue="default")
def sweep() -> None:
    jobs.sweep()
