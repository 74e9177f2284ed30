import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
application = get_wsgi_application()

from core.warmup import web_process_started  # noqa: E402  (needs the app registry, ready above)

web_process_started.send(sender=None)
