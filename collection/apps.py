from django.apps import AppConfig


class CollectionConfig(AppConfig):
    name = "collection"
    verbose_name = "Tasks and phrasings"

    def ready(self) -> None:
        from collection import tasks  # noqa: F401  (fills Celery's registry, where core/jobs.py finds tasks by name)
