"""Work a web process does once it has started, before its first request asks for it.

core/wsgi.py sends `web_process_started` after building the WSGI application (gunicorn's workers and
runserver load it; tests, Celery workers and management commands do not), and apps connect receivers in their
AppConfig.ready(). A receiver starts its own daemon thread for anything slow: the process serves requests
meanwhile, and a request that needs the thing before it is ready waits for it as it would have anyway.
collection.similarity loads its sentence-embedding model here: importing sentence-transformers and torch took
6 of the first live preview's seconds when the first author to type paid for it.
"""

from django.dispatch import Signal

# Arguments: none besides the sender.
web_process_started = Signal()
