from django.apps import AppConfig


class EvaluationConfig(AppConfig):
    name = "evaluation"
    verbose_name = "Models, scoring and results"

    def ready(self) -> None:
        from celery.signals import worker_ready

        worker_ready.connect(_recover_runs, dispatch_uid="evaluation.recover_runs")


def _recover_runs(**kwargs) -> None:
    # A worker that starts re-sends work a dead worker (or a down broker) left behind.
    from evaluation.services import scoring_runs_recover
    from evaluation.softprompts import softprompts_recover

    scoring_runs_recover()
    softprompts_recover()
