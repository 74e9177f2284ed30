from pathlib import Path

from collection.importers.instructions import import_instructions
from collection.management.commands._report import run_import
from collection.models import Instruction
from core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Import phrasings: the study's extracted instructions (--format instructioneval, imported approved: "
        "the unobserved file's templates into the crowd collection, the observed file's into FLAN, NIV2, T0 "
        "and Alpaca; entries the app cannot reproduce are reported by id and skipped) or a generic JSONL/CSV "
        "file (task, template, collection, author or source; imported pending)."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--format", required=True, choices=["instructioneval", "jsonl", "csv"])
        parser.add_argument(
            "--status", choices=Instruction.Status.values, help="Status of the new phrasings (see help above)"
        )

    def handle(self, *args, file: Path, format: str, status: str | None, **options):
        run_import(self, f"Phrasing import from {file}", import_instructions, file, fmt=format, status=status)
