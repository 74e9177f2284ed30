"""Pages on the embedded default (SQLite) at the demo's scale: every page people read, timed in process.

    .venv/bin/python bench/sqlite_pages.py var/db.sqlite3 --predictions 1000000

It copies the given database (a `bin/run` one, after its demo study: about 200,000 predictions and 15 soft
prompts) to a temporary file, adds copies of the demo model (its predictions copied under new model names,
then their summaries refreshed) until the copy holds --predictions predictions, and times each page through
Django's test client signed in as demo-curator: 20 requests warm (the page and board caches filled), and 5
cold (the caches cleared before each), with the trivial view (/healthz) measured in the same run. The goal
(issue 29): p95 under 500 ms for every page, warm.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def grow(predictions: int) -> None:
    """Copies of the demo model's base variant, predictions and all, until the database holds `predictions`."""
    from collection.models import Task
    from evaluation.leaderboards.aggregates import aggregates_refresh_many
    from evaluation.models import LanguageModel, ModelVariant, Prediction, VariantKind

    base = ModelVariant.objects.select_related("model").get(model__name="demo-t5", kind=VariantKind.BASE)
    rows = list(Prediction.objects.filter(variant=base))
    copy = 0
    while Prediction.objects.count() < predictions:
        copy += 1
        model = LanguageModel.objects.get(pk=base.model.pk)
        model.pk, model.name = None, f"demo-t5-copy-{copy}"
        model.save()
        model.tuned_on.set(base.model.tuned_on.all())
        variant = ModelVariant.objects.create(model=model, kind=VariantKind.BASE)
        for row in rows:
            row.pk, row.variant = None, variant
        Prediction.objects.bulk_create(rows, batch_size=5000)
        from evaluation.models import PhrasingResult

        results = list(PhrasingResult.objects.filter(variant=base))
        for result in results:
            result.pk, result.variant = None, variant
        PhrasingResult.objects.bulk_create(results, batch_size=5000)
        tasks = Task.objects.filter(benchmark__slug="demo", parent__isnull=True).values_list("id", flat=True)
        aggregates_refresh_many({(variant.id, task) for task in tasks})
        print(f"  copy {copy}: {Prediction.objects.count():,} predictions", flush=True)


def timed(client, path: str, n: int, cold: bool) -> tuple[float, float, int]:
    from django.core.cache import cache

    client.get(path)
    times, status = [], 0
    for _ in range(n):
        if cold:
            cache.clear()
        started = time.perf_counter()
        status = client.get(path).status_code
        times.append(1000 * (time.perf_counter() - started))
    times.sort()
    return statistics.median(times), times[max(0, int(round(0.95 * len(times))) - 1)], status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("database", type=Path, help="a bin/run SQLite database after its demo study")
    parser.add_argument("--predictions", type=int, default=1_000_000)
    args = parser.parse_args()
    copy = Path(tempfile.mkdtemp(prefix="bench-sqlite-")) / "db.sqlite3"
    shutil.copy(args.database, copy)
    from core.env import sqlite_url

    os.environ["DATABASE_URL"] = sqlite_url(copy)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client

    from collection.models import Instruction
    from evaluation.models import Prediction, ScoringRun

    settings.ALLOWED_HOSTS = ["*"]
    print(f"growing {copy} to {args.predictions:,} predictions (from {Prediction.objects.count():,})")
    started = time.monotonic()
    grow(args.predictions)
    print(f"grown in {time.monotonic() - started:.0f} s")
    client = Client()
    client.force_login(get_user_model().objects.get(username="demo-curator"))
    phrasing = Instruction.objects.filter(task__slug="sentiment", status="approved").order_by("id").first()
    run = ScoringRun.objects.order_by("-id").first()
    pages = [
        ("trivial view (/healthz)", "/healthz"),
        ("home page (leaders)", "/"),
        ("benchmark page", "/b/demo/"),
        ("leaderboard page", "/b/demo/leaderboard/"),
        ("leaderboard, held out", "/b/demo/leaderboard/?set=heldout"),
        ("leaderboard API", "/api/leaderboard/?benchmark=demo"),
        ("task results page", "/b/demo/t/sentiment/results/"),
        ("phrasing page", f"/phrasings/{phrasing.id}/"),
        ("models list", "/models/"),
        ("model page", "/models/demo-t5/"),
        ("runs list", "/runs/"),
        ("run page", f"/runs/{run.id}/"),
        ("status page", "/status/"),
        ("review queue", "/curate/"),
        ("my phrasings", "/me/phrasings/"),
    ]
    print(f"\n{Prediction.objects.count():,} predictions; Django test client in process, signed in")
    print(f"{'page':26} {'warm p50':>9} {'warm p95':>9} {'cold p50':>9} {'cold p95':>9} {'vs trivial':>10}")
    base, worst = None, (0.0, "")
    for label, path in pages:
        warm50, warm95, status = timed(client, path, 20, cold=False)
        cold50, cold95, _ = timed(client, path, 5, cold=True)
        base = base or warm50
        print(
            f"{label:26} {warm50:9.1f} {warm95:9.1f} {cold50:9.1f} {cold95:9.1f} {base / warm50:9.2f}x {status}"
        )
        if label != pages[0][0]:
            worst = max(worst, (warm95, label))
    print(f"slowest warm p95: {worst[0]:.1f} ms ({worst[1]}); goal < 500 ms for every page")


if __name__ == "__main__":
    main()
