from pathlib import Path

from django.core.management.base import CommandError

from core.errors import ApplicationError
from core.management.base import BaseCommand
from evaluation.releases.export import DEFAULT_LICENSE, ROW_GROUP_ROWS, release_export


class Command(BaseCommand):
    help = (
        "Write a versioned dataset release (Hugging Face Parquet layout: tasks, instances, phrasings, models, "
        "predictions, a dataset card, release.json and SHA256SUMS) into OUT_DIR/<name>-<version>. "
        "See docs/releases.md."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "out_dir", type=Path, help="The directory the release's own directory is made in."
        )
        parser.add_argument(
            "--benchmark",
            dest="benchmarks",
            action="append",
            metavar="SLUG",
            help="Release this benchmark (repeat for several); default: every benchmark.",
        )
        parser.add_argument(
            "--name", default="phrasebench", help="The release's name (default: phrasebench)."
        )
        parser.add_argument(
            "--release-version", help="The release's version; default: the UTC time, 20250130T120000Z."
        )
        parser.add_argument(
            "--license",
            default=DEFAULT_LICENSE,
            help="The card's license, a Hugging Face license id such as cc-by-4.0 (default: other, explained in "
            "the card).",
        )
        parser.add_argument(
            "--row-group-rows",
            type=int,
            default=ROW_GROUP_ROWS,
            help=f"Rows per Parquet row group: what the export holds in memory (default {ROW_GROUP_ROWS:,}).",
        )

    def handle(self, *args, **opts):
        if opts["row_group_rows"] < 1:
            raise CommandError("--row-group-rows must be 1 or more.")
        try:
            export = release_export(
                out_dir=opts["out_dir"],
                benchmarks=opts["benchmarks"],
                name=opts["name"],
                version=opts["release_version"],
                license=opts["license"],
                row_group_rows=opts["row_group_rows"],
            )
        except ApplicationError as exc:
            raise CommandError(f"Exporting the release failed; nothing was written.\n{exc}") from None
        self.stdout.write(self.style.SUCCESS(f"Wrote {export.path}"))
        for config, rows in export.counts.items():
            self.stdout.write(f"  {config}: {rows:,} rows")
            if not rows:
                # One empty Parquet file: pyarrow reads it, `datasets` refuses a split without rows.
                self.stdout.write(
                    self.style.WARNING(f"  {config} is empty: `datasets` will not load that config.")
                )
        self.stdout.write(f"  data version: {export.manifest['data_version']}")
