from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from celery.signals import worker_ready

        from core import tasks  # noqa: F401  (fills Celery's registry, where core/jobs.py finds tasks by name)

        worker_ready.connect(_recover_jobs, dispatch_uid="core.recover_jobs")


def _recover_jobs(**kwargs) -> None:
    # A worker that starts re-sends the jobs a dead worker (or a down broker) left behind, of every kind.
    from core import jobs

    jobs.recover()
