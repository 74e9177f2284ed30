from pathlib import Path

from django.core.management.base import CommandError

from core.management.base import BaseCommand
from evaluation.releases import matrices


class Command(BaseCommand):
    help = (
        "Write PromptEval-ready matrices: per (model variant, task), the correctness matrix Y (phrasings x "
        "instances, int8) with its row and column ids and the phrasing covariates (sentence embeddings, "
        "discrete format features), one .npz each under OUT_DIR/<benchmark>/<task>/<variant>.npz, plus "
        "index.json and index.parquet. Only phrasings with every instance scored are rows; the others are "
        "listed in each file. Format: docs/prompteval.md."
    )

    def add_arguments(self, parser):
        parser.add_argument("out_dir", type=Path, metavar="OUT_DIR")
        parser.add_argument("--benchmark", metavar="SLUG", help="Only this benchmark's tasks (default: all).")
        parser.add_argument(
            "--model", action="append", metavar="NAME", help="Only this model's variants (repeatable)."
        )
        parser.add_argument(
            "--no-embeddings",
            action="store_true",
            help="Leave X_emb empty (no sentence-transformers model is loaded).",
        )

    def handle(self, *args, out_dir: Path, benchmark=None, model=None, no_embeddings=False, **options):
        if out_dir.exists() and not out_dir.is_dir():
            raise CommandError(f"{out_dir} exists and is not a directory.")
        try:
            report = matrices.export_matrices(
                out_dir, benchmark=benchmark, models=model, embeddings=not no_embeddings
            )
        except (ValueError, OSError) as exc:
            raise CommandError(str(exc)) from exc
        rows = report.rows
        dropped = sum(row["dropped_partial"] for row in rows)
        self.stdout.write(
            f"Wrote {len(rows)} matri{'x' if len(rows) == 1 else 'ces'} to {out_dir} "
            f"({sum(r['phrasings'] * r['instances'] for r in rows):,} cells); "
            f"{dropped} partly scored phrasing row(s) left out (listed in each file)."
        )
        for row in rows:
            self.stdout.write(
                f"  {row['path']}: {row['phrasings']} x {row['instances']}, mean accuracy "
                f"{row['mean_accuracy']:.3f}"
            )
        index = (
            "index.json and index.parquet" if report.parquet else "index.json (pyarrow missing: no Parquet)"
        )
        self.stdout.write(f"Index: {index}.")
