"""Shared by the import commands: run an import, print what it did, turn refusals into a clean exit."""

from django.core.management.base import CommandError

from collection import events
from core.errors import ApplicationError
from core.management.base import BaseCommand


def run_import(command: BaseCommand, title: str, importer, *args, **kwargs) -> None:
    try:
        report = importer(*args, **kwargs)
    except ApplicationError as exc:
        # CommandError exits non-zero with the message on stderr; the transaction was rolled back.
        raise CommandError(f"{title} failed, nothing was changed.\n{exc}") from None
    command.stdout.write(command.style.SUCCESS(f"{title}:"))
    for line in report.lines():
        command.stdout.write(f"  {line}")
    # Imported phrasings may be approved already: the layers above queue what they need (scoring, see
    # evaluation/receivers.py) and say what they did.
    for _receiver, lines in events.phrasings_imported.send(sender=BaseCommand):
        for line in lines or ():
            command.stdout.write(f"  {line}")
