"""Logging filters, named in settings.LOGGING."""

from __future__ import annotations

import logging

from django.core.exceptions import BadRequest, PermissionDenied, SuspiciousOperation


class OneLineForBadRequests(logging.Filter):
    """A 400 for a parameter that does not parse (core.parsing.InvalidParameter, a NUL character) is the
    client's mistake, not ours: Django logs it with the exception, a traceback per request, so a crawler or a
    fuzzer filled the log (64 tracebacks for one run of odd query strings). Kept as one line, which says
    what and where. So is a request for a host not in ALLOWED_HOSTS (Django's security logger): scanners send
    them to every public server, and the image check saw one traceback each; a warning, not an error. So is
    a 403 (PermissionDenied): a curator opening an admin page only admins may use logged a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(
            record.exc_info[1], (BadRequest, PermissionDenied, SuspiciousOperation)
        ):
            record.exc_info = None
            record.exc_text = None
            # Django logs a suspicious request as an error; it is the client's, like any other 400.
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


class NoHostnameForTheFileBroker(logging.Filter):
    """kombu warns "No hostname was supplied. Reverting to default 'localhost'" whenever a connection's URL has
    no host, which the embedded default's filesystem:// broker never has: a warning about nothing on every
    `bin/run`. Attached to kombu.connection only when the broker is the filesystem one (core/settings.py), so
    a redis:// or amqp:// URL that lacks its host is still warned about."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("No hostname was supplied.")
