"""The Celery app. Configuration comes from Django settings (CELERY_* names); see core/settings.py."""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")

app = Celery("phrasebench")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.celeryd_init.connect
def solo_worker_takes_one_job(sender=None, conf=None, options=None, **kwargs):
    """A `--pool solo` worker runs one job at a time, but Celery sizes how many jobs it takes from the broker
    by its concurrency, which defaults to the CPU count. RabbitMQ pushes that many: a busy GPU worker held jobs
    an idle one could have run, and an approval's run waited behind a second bulk chunk (seen with 2 CPUs; a
    GPU host has dozens). A concurrency given on the command line is kept."""
    options = options or {}
    pool = options.get("pool")
    solo = pool == "solo" or getattr(pool, "__module__", "") == "celery.concurrency.solo"
    if solo and not options.get("concurrency"):
        conf.worker_concurrency = 1
