"""API plumbing shared by the apps: one handler turns ApplicationError into its HTTP status (400 unless it
says otherwise) with the message."""

from __future__ import annotations

from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.errors import ApplicationError


def exception_handler(exc, context):
    if isinstance(exc, ApplicationError):
        return Response({"detail": exc.message, "errors": exc.details, **exc.extra}, status=exc.status_code)
    return drf_exception_handler(exc, context)
