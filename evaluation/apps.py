from django.apps import AppConfig


class EvaluationConfig(AppConfig):
    name = "evaluation"
    verbose_name = "Models, scoring and results"

    def ready(self) -> None:
        # receivers: what evaluation does when phrasings change (collection/events.py).
        # tasks: fills Celery's registry, where core/jobs.py finds tasks by name.
        from evaluation import receivers, tasks  # noqa: F401
