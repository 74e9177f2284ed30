"""Release export at scale: seed PostgreSQL with synthetic predictions (COPY, as bench/leaderboard.py seeds its
10 million), then time `export_release` on them and print its peak memory, beside a small export (10,000
predictions) measured in the same run: time per prediction and peak memory, large over small. A bounded-memory
export has a peak that hardly grows with the data.

    .venv/bin/python bench/release.py                        # 1,000,000 predictions
    .venv/bin/python bench/release.py --predictions 10000000 # 10 million (about 10 minutes to seed)
    .venv/bin/python bench/release.py --keep                 # keep the seeded database for the next run
    .venv/bin/python bench/release.py --smoke                # 100,000 (one model): runs, or not

It uses its own database (phrasebench_bench_release) on the server of DATABASE_URL (default: local
PostgreSQL) and drops it at the end unless --keep. Each export runs in a child process of its own, so its peak
resident memory (getrusage's ru_maxrss) is its own; the child's resident memory after Django has started is
printed beside it, and the difference is what the export itself holds.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchdb import SMOKE_HELP, database_drop, database_ensure, database_use

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DB_NAME = "phrasebench_bench_release"  # main() points DATABASE_URL at it; the export children inherit that
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")

TASKS, PHRASINGS_PER_TASK, INSTANCES, OPTIONS = 10, 100, 100, 4  # 100,000 cells per model
PER_MODEL = TASKS * PHRASINGS_PER_TASK * INSTANCES
SMALL = 10_000  # the baseline's predictions: one model on one task


def seed_benchmark(slug: str, *, models: int, tasks: int) -> int:
    """A benchmark of `tasks` tasks x PHRASINGS_PER_TASK phrasings x INSTANCES instances, scored by `models`
    models: models x tasks x 10,000 predictions through COPY. Returns how many."""
    import numpy as np
    from django.db import connection

    from collection.models import (
        Benchmark,
        Collection,
        Instance,
        Instruction,
        InstructionRevision,
        Task,
        phrasing_key,
    )
    from evaluation.models import LanguageModel, ModelVariant

    rng = np.random.default_rng(0)
    bench = Benchmark.objects.create(slug=slug, name=f"Release bench {slug}")
    crowd, tuning = Collection.objects.get(slug="crowd"), Collection.objects.get(slug="flan")
    revisions, instances = {}, {}
    for t in range(tasks):
        task = Task.objects.create(
            benchmark=bench,
            slug=f"task-{t}",
            name=f"Task {t}",
            kind="multiple_choice",
            answer_format="letter",
            input_fields=["question"],
            label_space=list("ABCD"),
            max_options=OPTIONS,
        )
        created = Instance.objects.bulk_create(
            Instance(
                task=task,
                source_id=f"{t}/{i}",
                inputs={"question": f"Question {i} of task {t}?"},
                options=["w", "x", "y", "z"],
                gold=i % OPTIONS,
            )
            for i in range(INSTANCES)
        )
        instances[task.id] = [(instance.id, instance.gold) for instance in created]
        for p in range(PHRASINGS_PER_TASK):
            template = f"Phrasing {p} for task {t}: {{question}}\n{{options}}"
            instruction = Instruction.objects.create(
                task=task,
                collection=tuning if p % 4 == 0 else crowd,
                source="bench",
                external_id=f"{t}/{p}",
                status="approved",
                stable_key=phrasing_key(benchmark_slug=slug, task_slug=task.slug, template=template),
            )
            revision = InstructionRevision.objects.create(
                instruction=instruction, number=1, template=template
            )
            instruction.current_revision = revision
            instruction.save(update_fields=["current_revision"])
            revisions.setdefault(task.id, []).append(revision.id)
    variants = []
    for m in range(models):
        model = LanguageModel.objects.create(
            name=f"{slug}-model-{m:03d}", source=f"org/{slug}-{m}", family="seq2seq"
        )
        model.tuned_on.set([tuning])
        variants.append(ModelVariant.objects.create(model=model, kind="base"))

    count = 0
    columns = (
        "(variant_id, revision_id, instance_id, logliks, lengths, predicted, correct, truncated, created_at)"
    )
    with connection.cursor() as cursor:
        with cursor.copy(f"COPY evaluation_prediction {columns} FROM STDIN") as copy:
            for variant in variants:
                for task_id, task_revisions in revisions.items():
                    for revision_id in task_revisions:
                        # Realistic log-likelihoods (incompressible floats), an answer from them.
                        logliks = rng.normal(-3.0, 1.5, size=(INSTANCES, OPTIONS)).round(6)
                        predicted = logliks.argmax(axis=1)
                        buffer = io.StringIO()
                        for (instance_id, gold), scores, answer in zip(
                            instances[task_id], logliks, predicted
                        ):
                            right = "t" if answer == gold else "f"
                            buffer.write(
                                f"{variant.id}\t{revision_id}\t{instance_id}\t{json.dumps(scores.tolist())}\t"
                                f"[1, 1, 1, 1]\t{answer}\t{right}\tf\t2026-11-21 00:00:00+00\n"
                            )
                        copy.write(buffer.getvalue())
                        count += INSTANCES
        cursor.execute("ANALYZE")
    return count


def seed(predictions: int) -> None:
    from django.core.management import call_command

    from collection.models import Benchmark

    call_command("migrate", verbosity=0)
    if Benchmark.objects.filter(slug="large").exists():
        print("seeded database found; reusing it")
        return
    t0 = time.perf_counter()
    small = seed_benchmark("small", models=1, tasks=SMALL // (PHRASINGS_PER_TASK * INSTANCES))
    large = seed_benchmark("large", models=predictions // PER_MODEL, tasks=TASKS)
    print(f"seeded {large:,} + {small:,} predictions in {time.perf_counter() - t0:.0f} s")


def vm_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def child_export(benchmark: str, out: str) -> None:
    """In a process of its own: one export, then its time and memory as JSON on the last line."""
    import django

    django.setup()
    from evaluation.releases.export import release_export

    started_rss = vm_rss_kib()
    # Resident memory sampled through the export: a bounded export peaks as high in its first half as over all.
    samples: list[tuple[float, int]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            samples.append((time.perf_counter(), vm_rss_kib()))

    sampler = threading.Thread(target=sample, daemon=True)
    t0 = time.perf_counter()
    sampler.start()
    export = release_export(out_dir=Path(out), benchmarks=[benchmark], name=benchmark, version="bench")
    seconds = time.perf_counter() - t0
    done.set()
    sampler.join()
    first_half = max((rss for at, rss in samples if at - t0 <= seconds / 2), default=started_rss)
    size = sum(p.stat().st_size for p in export.path.rglob("*") if p.is_file())
    print(
        json.dumps(
            {
                "seconds": seconds,
                "rows": export.counts["predictions"],
                "bytes": size,
                "started_rss_kib": started_rss,
                "first_half_peak_rss_kib": first_half,
                "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            }
        )
    )


def measure(benchmark: str, out: Path) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "--child-export", benchmark, str(out)],
        check=True,
        capture_output=True,
        text=True,
        encoding="utf-8",
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--predictions", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="Keep the seeded database.")
    parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    parser.add_argument("--child-export", nargs=2, metavar=("BENCHMARK", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_export:
        child_export(*args.child_export)
        return

    if args.smoke:
        args.predictions = PER_MODEL
    if args.predictions <= 0 or args.predictions % PER_MODEL:
        parser.error(f"--predictions must be a positive multiple of {PER_MODEL:,} (one model's cells)")

    import django

    name = database_use(DB_NAME, smoke=args.smoke)
    database_ensure(name, drop=args.smoke)
    django.setup()
    seed(args.predictions)
    out = Path(tempfile.mkdtemp(prefix="release-bench-"))
    try:
        small = measure("small", out)
        large = measure("large", out)
    finally:
        shutil.rmtree(out, ignore_errors=True)
        if not args.keep:
            database_drop(name)
    for label, r in (("small", small), ("large", large)):
        print(
            f"{label}: {r['rows']:,} predictions exported in {r['seconds']:.1f} s "
            f"({1e6 * r['seconds'] / r['rows']:.1f} us a prediction, {r['bytes'] / 1e6:.1f} MB on disk); "
            f"peak RSS {r['peak_rss_kib'] / 1024:.0f} MiB ({(r['peak_rss_kib'] - r['started_rss_kib']) / 1024:.0f} MiB "
            f"over the {r['started_rss_kib'] / 1024:.0f} MiB of a started Django process; "
            f"{r['first_half_peak_rss_kib'] / 1024:.0f} MiB at most in the export's first half)"
        )
    per_row = (large["seconds"] / large["rows"]) / (small["seconds"] / small["rows"])
    print(
        f"large / small: {large['rows'] / small['rows']:.0f}x the predictions; time per prediction {per_row:.2f}x; "
        f"peak RSS {large['peak_rss_kib'] / small['peak_rss_kib']:.2f}x"
    )


if __name__ == "__main__":
    main()
