from pathlib import Path

from collection.importers.tasks import import_tasks_file
from collection.management.commands._report import run_import
from core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Import task instances from JSONL or CSV into a benchmark (see collection/importers/tasks.py)."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--benchmark", required=True, help="Benchmark slug; created if missing")
        parser.add_argument("--benchmark-name", default="")
        parser.add_argument("--format", choices=["jsonl", "csv"], help="Defaults to the file's extension")

    def handle(self, *args, file: Path, benchmark: str, benchmark_name: str, format: str | None, **options):
        fmt = format or file.suffix.lstrip(".").lower()
        run_import(
            self,
            f"Task import from {file}",
            import_tasks_file,
            file,
            fmt=fmt,
            benchmark_slug=benchmark,
            benchmark_name=benchmark_name,
        )
