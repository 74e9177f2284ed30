from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from celery import signals

        # checks: registers the system checks. tasks: fills Celery's registry, where core/jobs.py finds tasks
        # by name.
        from core import checks, tasks  # noqa: F401

        signals.worker_ready.connect(_recover_jobs, dispatch_uid="core.recover_jobs")
        signals.worker_ready.connect(_warn_renamed_settings, dispatch_uid="core.renamed_settings")
        # Worker heartbeats for the status page (core/worker_beats.py).
        signals.worker_ready.connect(_worker_ready, dispatch_uid="core.beat_ready")
        signals.worker_shutdown.connect(_worker_shutdown, dispatch_uid="core.beat_shutdown")
        signals.heartbeat_sent.connect(_heartbeat_sent, dispatch_uid="core.beat")
        signals.task_prerun.connect(_task_prerun, dispatch_uid="core.beat_task_start")
        signals.task_postrun.connect(_task_postrun, dispatch_uid="core.beat_task_end")


def _recover_jobs(**kwargs) -> None:
    # A worker that starts re-sends the jobs a dead worker (or a down broker) left behind, of every kind.
    from core import jobs

    jobs.recover()


def _warn_renamed_settings(**kwargs) -> None:
    from core import checks

    checks.log_renamed_settings()


def _worker_ready(sender=None, **kwargs) -> None:
    from core import worker_beats

    consumer = getattr(sender, "task_consumer", None)
    queues = [queue.name for queue in getattr(consumer, "queues", [])]
    worker_beats.worker_started(name=sender.hostname, queues=queues)


def _worker_shutdown(sender=None, **kwargs) -> None:
    from core import worker_beats

    worker_beats.worker_stopped()


def _heartbeat_sent(**kwargs) -> None:
    from core import worker_beats

    worker_beats.beat()


def _task_prerun(task=None, args=(), **kwargs) -> None:
    from core import worker_beats

    if task is not None and task.request.hostname and not task.request.is_eager:
        worker_beats.task_started(name=task.request.hostname, task=task.name, args=tuple(args or ()))


def _task_postrun(task=None, **kwargs) -> None:
    from core import worker_beats

    if task is not None and task.request.hostname and not task.request.is_eager:
        worker_beats.task_finished(name=task.request.hostname)
