from pathlib import Path

from collection.management.commands._report import run_import
from core.management.base import BaseCommand
from evaluation.releases.load import release_import


class Command(BaseCommand):
    help = (
        "Import a dataset release written by export_release: its benchmarks, tasks, instances and phrasings where "
        "missing, and its models as inactive models with their predictions and figures. Checks every file's hash "
        "and schema first; one transaction. See docs/releases.md."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path, help="The release's directory (the one with release.json).")
        parser.add_argument(
            "--model-suffix",
            default="",
            help="Appended to every model name (e.g. -release), for a release whose models are registered here.",
        )

    def handle(self, *args, **opts):
        run_import(
            self, "Importing the release", release_import, opts["path"], model_suffix=opts["model_suffix"]
        )
