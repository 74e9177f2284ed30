"""System checks of the settings the environment gives (`manage.py check`, `migrate`, `runserver`)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.checks import Tags, register
from django.core.checks import Warning as CheckWarning

from core.env import is_set

log = logging.getLogger(__name__)


def renamed_settings_in_use() -> list[str]:
    """A sentence for each renamed setting the environment still gives by its old name."""
    found = []
    for old, new in settings.RENAMED_SETTINGS.items():
        if not is_set(old):
            continue
        if is_set(new):
            found.append(f"{old} is deprecated and ignored: {new} is set.")
        else:
            found.append(f"{old} is deprecated: it is read as {new}. Set {new} instead.")
    return found


@register(Tags.compatibility)
def check_renamed_settings(app_configs, **kwargs) -> list[CheckWarning]:
    return [CheckWarning(text, id="core.W001") for text in renamed_settings_in_use()]


def log_renamed_settings() -> None:
    """The same warnings in the log, for a Celery worker starting: it runs no printed checks."""
    for text in renamed_settings_in_use():
        log.warning(text)
