from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError

from core.management.base import BaseCommand
from evaluation.leaderboards import aggregates
from evaluation.stats import figure_registry


def docs_path() -> Path:
    return Path(settings.BASE_DIR) / "docs" / "figures.md"


class Command(BaseCommand):
    help = (
        "Recompute every stored summary computed under another list of figures (a figure added to or removed "
        "from evaluation/stats/figure_registry.py since) or whose replicates were drawn under an older seeding "
        "(evaluation/stats/replicates.py's MAGIC), so every page, API row and export has every figure. With "
        "--docs, write docs/figures.md from the registry instead (--docs --check: fail if it is out of date)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--docs", action="store_true", help="Write docs/figures.md from the registry.")
        parser.add_argument(
            "--check", action="store_true", help="With --docs: only check that it is current."
        )

    def handle(self, *args, **opts):
        if opts["docs"]:
            text, docs = figure_registry.markdown(), docs_path()
            if opts["check"]:
                if not docs.is_file() or docs.read_text(encoding="utf-8") != text:
                    raise CommandError(f"{docs} is out of date: run manage.py refresh_figures --docs.")
                self.stdout.write(f"{docs} is current.")
                return
            docs.write_text(text, encoding="utf-8")
            self.stdout.write(f"Wrote {docs}.")
            return
        refreshed = aggregates.figures_refresh_stale()
        self.stdout.write(
            f"Recomputed {refreshed} (model variant, task) summar{'y' if refreshed == 1 else 'ies'}."
        )
