"""API plumbing shared by the apps: one handler turns ApplicationError into a 400 with the message."""

from __future__ import annotations

from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.errors import ApplicationError


def exception_handler(exc, context):
    if isinstance(exc, ApplicationError):
        return Response({"detail": exc.message, "errors": exc.details}, status=status.HTTP_400_BAD_REQUEST)
    return drf_exception_handler(exc, context)
