from pathlib import Path

from collection.importers.bigbench import import_bigbench
from collection.management.commands._report import run_import
from core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Import BIG-bench tasks (task.json with target_scores; subtask folders included)."

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", type=Path, help="Task folders or task.json files")

    def handle(self, *args, paths: list[Path], **options):
        run_import(self, f"BIG-bench import of {len(paths)} task(s)", import_bigbench, paths)
