"""Import throughput: the MMLU and BIG-bench importers against a naive one-INSERT-per-row baseline,
measured in the same run on the same database.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/imports.py

It creates and drops its own test database (test_<name>, as the test runner does), so it never touches
real data; do not run it while the tests run against the same server. --smoke imports 3 MMLU subjects and
one BIG-bench task (tests/test_benches.py runs it so, against a database name of its own).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--smoke", action="store_true", help="3 MMLU subjects and one BIG-bench task: runs, or not"
    )
    args = parser.parse_args()
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import setup_databases, teardown_databases

    if not SHARED.is_dir():
        sys.exit(f"the shared benchmark data is not at {SHARED}")
    from collection.importers.bigbench import import_bigbench
    from collection.importers.mmlu import import_mmlu, read_subject
    from collection.models import Instance, Task

    mmlu = SHARED / "mmlu" / "test"
    bigbench = sorted(p for p in (SHARED / "bigbench_lite_tasks").iterdir() if p.is_dir())
    smoke = tempfile.TemporaryDirectory(prefix="imports-smoke-")
    if args.smoke:
        for path in sorted(mmlu.glob("*.csv"))[:3]:
            (Path(smoke.name) / path.name).symlink_to(path)
        mmlu, bigbench = Path(smoke.name), bigbench[:1]
    old = setup_databases(verbosity=0, interactive=False)
    try:
        print(f"database: {connection.vendor} {connection.settings_dict['NAME']}")
        t0 = time.perf_counter()
        import_mmlu(mmlu)
        mmlu_s = time.perf_counter() - t0
        n_mmlu = Instance.objects.count()

        t0 = time.perf_counter()
        import_mmlu(mmlu)
        again_s = time.perf_counter() - t0

        # Baseline: the same rows, one INSERT each (what a naive loop over Instance.objects.create does).
        Instance.objects.all().delete()
        t0 = time.perf_counter()
        for path in sorted(mmlu.glob("*.csv")):
            task = Task.objects.get(slug=path.stem.removesuffix("_test"))
            for row in read_subject(path):
                Instance.objects.create(task=task, **row)
        naive_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        import_bigbench(bigbench)
        bb_s = time.perf_counter() - t0
        n_bb = Instance.objects.filter(task__benchmark__slug="bigbench-lite").count()

        print(f"MMLU import:          {n_mmlu:,} instances in {mmlu_s:.2f} s ({n_mmlu / mmlu_s:,.0f}/s)")
        print(f"MMLU naive baseline:  {n_mmlu:,} instances in {naive_s:.2f} s ({n_mmlu / naive_s:,.0f}/s)")
        print(f"speed-up over naive:  {naive_s / mmlu_s:.1f}x")
        print(
            f"MMLU re-import (no-op): {again_s:.2f} s ({mmlu_s / again_s:.1f}x faster than the first import)"
        )
        print(f"BIG-bench Lite import: {n_bb:,} instances in {bb_s:.2f} s ({n_bb / bb_s:,.0f}/s)")
        call_command("check", verbosity=0)
    finally:
        teardown_databases(old, verbosity=0)
        smoke.cleanup()


if __name__ == "__main__":
    main()
