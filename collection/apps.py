from django.apps import AppConfig


class CollectionConfig(AppConfig):
    name = "collection"
    verbose_name = "Tasks and phrasings"

    def ready(self) -> None:
        from collection import tasks  # noqa: F401  (fills Celery's registry, where core/jobs.py finds tasks by name)
        from collection.similarity import warm_in_background
        from core.warmup import web_process_started

        # A web process loads the embedding model as it starts, not when the first author types.
        web_process_started.connect(warm_in_background, dispatch_uid="collection.similarity.warm")
