"""Celery tasks: thin wrappers that take ids and call a service. Each names its queue: `gpu` for what loads a
model (scoring, training, checking a new model; one worker process per GPU), `default` for light work. Their
life as jobs is core/jobs.py's."""

from celery import shared_task

from core import jobs
from evaluation import aggregates, calibration, registry, scoring, softprompts
from evaluation.models import LanguageModel, ModelCheck, ScoringRun, SoftPrompt


@shared_task(bind=True, name="evaluation.tasks.score_run", queue="gpu", max_retries=None)
def score_run(self, run_id: int, resume_token: str | None = None) -> None:
    jobs.perform(
        self,
        ScoringRun,
        run_id,
        resume_token=resume_token,
        work=scoring.scoring_run_chunk_work,
        failures=scoring.FAILURES,
    )


@shared_task(bind=True, name="evaluation.tasks.train_softprompt", queue="gpu", max_retries=None)
def train_softprompt(self, soft_prompt_id: int, resume_token: str | None = None) -> None:
    jobs.perform(
        self,
        SoftPrompt,
        soft_prompt_id,
        resume_token=resume_token,
        work=softprompts.softprompt_train_work,
        failures=softprompts.FAILURES,
    )


# On the gpu queue because it loads the model, where scoring will load it (the worker keeps it warm).
@shared_task(bind=True, name="evaluation.tasks.check_model", queue="gpu", max_retries=None)
def check_model(self, check_id: int, resume_token: str | None = None) -> None:
    jobs.perform(
        self,
        ModelCheck,
        check_id,
        resume_token=resume_token,
        work=registry.language_model_check_work,
        failures=registry.CHECK_FAILURES,
    )


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


# No model is loaded: calibration reads the base model's stored scores (evaluation/calibration.py).
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
