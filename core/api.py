"""API plumbing shared by the apps: one handler turns ApplicationError into its HTTP status (400 unless it
says otherwise) with the message."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.errors import ApplicationError, response_headers
from core.parsing import InvalidParameter


def exception_handler(exc, context):
    if isinstance(exc, ApplicationError):
        return Response(
            {"detail": exc.message, "errors": exc.details, **exc.extra},
            status=exc.status_code,
            headers=response_headers(exc),
        )
    if isinstance(exc, InvalidParameter):
        return Response({"detail": str(exc)}, status=400)
    if isinstance(exc, RequestDataTooBig):
        # Django refuses a body over DATA_UPLOAD_MAX_MEMORY_SIZE as it is read; said in JSON here.
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return Response({"detail": f"The request body is over the limit of {limit:,} bytes."}, status=400)
    return drf_exception_handler(exc, context)
