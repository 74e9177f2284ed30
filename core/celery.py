"""The Celery app. Configuration comes from Django settings (CELERY_* names); see core/settings.py."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")

app = Celery("phrasebench")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
