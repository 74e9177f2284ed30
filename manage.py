#!/usr/bin/env python
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
    from django.core.management import execute_from_command_line

    from core.env import SettingError

    try:
        execute_from_command_line(sys.argv)
    except SettingError as exc:
        # A setting that cannot be used (core/env.py names it and its value): one line, not Django's traceback.
        sys.exit(f"manage.py: cannot start: {exc}")
