"""Shared by the import commands: run an import, print what it did, turn refusals into a clean exit."""

from django.core.management.base import BaseCommand, CommandError

from core.errors import ApplicationError


def run_import(command: BaseCommand, title: str, importer, *args, **kwargs) -> None:
    try:
        report = importer(*args, **kwargs)
    except ApplicationError as exc:
        # CommandError exits non-zero with the message on stderr; the transaction was rolled back.
        raise CommandError(f"{title} failed, nothing was changed.\n{exc}") from None
    command.stdout.write(command.style.SUCCESS(f"{title}:"))
    for line in report.lines():
        command.stdout.write(f"  {line}")
    # Imported phrasings may be approved already: queue them on every active model, as an approval would.
    from evaluation.models import RunTrigger
    from evaluation.services import scoring_for_active_models

    runs = scoring_for_active_models(trigger=RunTrigger.IMPORT)
    if runs:
        cells = sum(run.to_compute for run in runs)
        command.stdout.write(f"  queued {len(runs)} scoring run(s), {cells} cell(s) to compute")
