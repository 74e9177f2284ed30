from pathlib import Path

from collection.importers.mmlu import import_mmlu
from collection.management.commands._report import run_import
from core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Import MMLU subject CSVs (question, A, B, C, D, answer) as tasks under one pooled MMLU task."

    def add_arguments(self, parser):
        parser.add_argument("directory", type=Path, help="Folder with <subject>_test.csv files")

    def handle(self, *args, directory: Path, **options):
        run_import(self, f"MMLU import from {directory}", import_mmlu, directory)
