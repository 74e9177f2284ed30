"""The base class of the app's management commands."""

from __future__ import annotations

from django.core.management.base import BaseCommand as DjangoBaseCommand
from django.core.management.base import CommandError

from core.errors import ApplicationError


class BaseCommand(DjangoBaseCommand):
    """Django's, with a problem the user can fix (an ApplicationError, which the services raise) said as a
    CommandError: its message and details, exit status 1, as the pages and the API say it, not a traceback.
    Every command of the app derives from this one (tests/core/test_commands.py), so a service's refusal that a
    command does not catch itself (`score` on a model of published results only did not) still reads well."""

    def execute(self, *args, **options):
        try:
            return super().execute(*args, **options)
        except ApplicationError as exc:
            raise CommandError(str(exc)) from exc
