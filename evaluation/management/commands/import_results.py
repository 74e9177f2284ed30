from pathlib import Path

from django.core.management.base import CommandError

from core.errors import ApplicationError
from core.management.base import BaseCommand
from evaluation.leaderboards.published_results import import_results


class Command(BaseCommand):
    help = "Import published per-phrasing accuracies (e.g. the study's result CSVs) as imported model rows."

    def add_arguments(self, parser):
        parser.add_argument(
            "path", type=Path, help="A directory (searched recursively for .csv) or one file."
        )
        parser.add_argument("--format", default="instructioneval-csv", choices=["instructioneval-csv"])

    def handle(self, *args, **opts):
        try:
            report = import_results(opts["path"], fmt=opts["format"])
        except ApplicationError as exc:
            raise CommandError(f"Importing results failed, nothing was changed.\n{exc}") from None
        self.stdout.write(self.style.SUCCESS("Imported results:"))
        for line in report.lines():
            self.stdout.write(f"  {line}")
