"""Logging filters, named in settings.LOGGING."""

from __future__ import annotations

import logging

from django.core.exceptions import BadRequest


class OneLineForBadRequests(logging.Filter):
    """A 400 for a parameter that does not parse (core.parsing.InvalidParameter, a NUL character) is the
    client's mistake, not ours: Django logs it with the exception, a traceback per request, so a crawler or a
    fuzzer filled the log (64 tracebacks for one run of odd query strings). Kept as one line, which says
    what and where."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], BadRequest):
            record.exc_info = None
            record.exc_text = None
        return True
