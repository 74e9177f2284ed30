"""Leaderboard scale: seed PostgreSQL with 100 models x 1,000 phrasings x 100 instances (10 million
predictions), then time every page people read at that scale (the home page with its leaders, leaderboard,
task grid, paired comparison, phrasing, model, run and status pages, the leaderboard API, and the models,
runs, tasks, review-queue and my-phrasings lists, the last two signed in) served by gunicorn on loopback,
each beside a trivial Django view (/healthz) measured in the same run, and print the chart bundle's bytes on
the wire (after collectstatic, as bin/run and the Dockerfile serve it).

    .venv/bin/python bench/leaderboard.py            # seeds (a few minutes), measures, drops the database
    .venv/bin/python bench/leaderboard.py --keep     # keep the seeded database for the next run
    .venv/bin/python bench/leaderboard.py --smoke    # 3 models x 10 phrasings x 10 instances: runs, or not

It uses its own database (phrasebench_bench) on the server of DATABASE_URL (default: local PostgreSQL).
The 1,000 phrasings are 10 tasks x 100 phrasings, each task with 100 evaluation instances. It exits with
status 1 when any request failed.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from benchdb import SMOKE_HELP, database_drop, database_ensure, database_use

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DB_NAME = "phrasebench_bench"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
PORT = 8765


@dataclass(frozen=True)
class Size:
    models: int
    tasks: int
    phrasings_per_task: int
    instances: int
    requests: int = 60  # sequential requests per page
    seconds: float = 8.0  # then concurrent clients for this long


FULL = Size(models=100, tasks=10, phrasings_per_task=100, instances=100)
SMOKE = Size(models=3, tasks=2, phrasings_per_task=5, instances=10, requests=3, seconds=0.5)


def seed(size: Size) -> None:
    import numpy as np
    from django.core.management import call_command
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
    from evaluation.leaderboards.aggregates import _refresh_task_summaries, benchmark_summaries_refresh
    from evaluation.models import LanguageModel, ModelVariant

    call_command("migrate", verbosity=0)
    if Benchmark.objects.filter(slug="scale").exists():
        print("seeded database found; reusing it")
        return
    t0 = start = time.perf_counter()
    rng = np.random.default_rng(0)
    bench = Benchmark.objects.create(slug="scale", name="Scale benchmark")
    crowd, tuning = Collection.objects.get(slug="crowd"), Collection.objects.get(slug="flan")
    tasks, revisions = [], {}
    for t in range(size.tasks):
        task = Task.objects.create(
            benchmark=bench,
            slug=f"task-{t}",
            name=f"Task {t}",
            kind="multiple_choice",
            answer_format="letter",
            input_fields=["question"],
            label_space=list("ABCD"),
            max_options=4,
        )
        Instance.objects.bulk_create(
            Instance(
                task=task,
                source_id=f"{t}/{i}",
                inputs={"question": f"Question {i} of task {t}?"},
                options=["w", "x", "y", "z"],
                gold=i % 4,
            )
            for i in range(size.instances)
        )
        for p in range(size.phrasings_per_task):
            template = f"Phrasing {p} for task {t}: {{question}}\n{{options}}"
            instruction = Instruction.objects.create(
                task=task,
                collection=tuning if p % 4 == 0 else crowd,
                source="bench",
                external_id=f"{t}/{p}",
                status="approved",
                stable_key=phrasing_key(benchmark_slug="scale", task_slug=task.slug, template=template),
            )
            rev = InstructionRevision.objects.create(instruction=instruction, number=1, template=template)
            instruction.current_revision = rev
            instruction.save(update_fields=["current_revision"])
            revisions.setdefault(task.id, []).append(rev.id)
        tasks.append(task)
    variants = []
    for m in range(size.models):
        model = LanguageModel.objects.create(name=f"model-{m:03d}", source=f"/models/{m}", family="seq2seq")
        model.tuned_on.set([tuning])
        variants.append(ModelVariant.objects.create(model=model, kind="base"))
    print(f"  rows: {time.perf_counter() - t0:.1f} s")

    # Predictions through COPY: each model has its own skill, each phrasing its own difficulty.
    t0 = time.perf_counter()
    instance_ids = {task.id: list(task.instances.values_list("id", flat=True)) for task in tasks}
    with connection.cursor() as cursor:
        columns = "(variant_id, revision_id, instance_id, logliks, lengths, predicted, correct, truncated, created_at)"
        with cursor.copy(f"COPY evaluation_prediction {columns} FROM STDIN") as copy:
            for v, variant in enumerate(variants):
                skill = 0.3 + 0.5 * v / size.models
                for task in tasks:
                    for rev in revisions[task.id]:
                        p = np.clip(skill + rng.normal(0, 0.08), 0.05, 0.95)
                        right = rng.random(size.instances) < p
                        buffer = io.StringIO()
                        for inst, ok in zip(instance_ids[task.id], right):
                            buffer.write(
                                f"{variant.id}\t{rev}\t{inst}\t[-0.5, -1.5, -2.0, -2.5]\t[1, 1, 1, 1]\t"
                                f"{0 if ok else 1}\t{'t' if ok else 'f'}\tf\t2026-11-21 00:00:00+00\n"
                            )
                        copy.write(buffer.getvalue())
        predictions = size.models * size.tasks * size.phrasings_per_task * size.instances
        print(f"  {predictions:,} predictions copied: {time.perf_counter() - t0:.1f} s")
        t0 = time.perf_counter()
        cursor.execute("""
            INSERT INTO evaluation_phrasingresult
                (variant_id, revision_id, task_id, accuracy, n_correct, n_total, complete, source, provenance, updated_at)
            SELECT p.variant_id, p.revision_id, i.task_id, avg(p.correct::int), sum(p.correct::int), count(*),
                   true, 'scored', '', now()
            FROM evaluation_prediction p JOIN collection_instruction i ON i.current_revision_id = p.revision_id
            GROUP BY p.variant_id, p.revision_id, i.task_id
        """)
        cursor.execute("ANALYZE")
    print(f"  per-phrasing results: {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    for variant in ModelVariant.objects.select_related("model"):
        for task in tasks:
            _refresh_task_summaries(variant, task)
        benchmark_summaries_refresh(variant=variant, benchmark=bench)
    print(f"  task and benchmark summaries (with bootstrap CIs): {time.perf_counter() - t0:.1f} s")
    print(f"seeding time: {time.perf_counter() - start:.1f} s")


def refresh_after_one_run() -> None:
    """What a finished run costs the figures: one (variant, task) refreshed, then the variant's benchmark rows
    averaged from the tasks' stored replicates; beside it, the previous path, which rebuilt every task's
    correctness matrix and bootstrap for the benchmark rows."""
    from collection.models import Task
    from evaluation.leaderboards import aggregates
    from evaluation.models import ModelVariant
    from evaluation.stats import metrics

    variant = ModelVariant.objects.select_related("model").order_by("model__name").first()
    tasks = list(Task.objects.filter(benchmark__slug="scale").order_by("id"))
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        aggregates.aggregates_refresh(variant_id=variant.id, task_id=tasks[0].id)
        times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    data = {task: aggregates.task_data(variant, task) for task in tasks}
    for kind in ("", "multiple_choice"):
        for phrasing_set in aggregates.phrasing_sets(variant):
            picked = [(t, aggregates.subset(d, phrasing_set)) for t, d in data.items()]
            picked = [(t, d) for t, d in picked if d is not None and (not kind or t.kind == kind)]
            if picked:
                metrics.benchmark_summary(
                    [d for _, d in picked],
                    keys=[metrics.task_key(t.slug) for t, _ in picked],
                    samples=aggregates.BENCHMARK_BOOTSTRAP_SAMPLES,
                )
    rebuild = time.perf_counter() - t0
    refresh = statistics.median(times)
    print(
        f"refresh after one run (one task, then the benchmark rows from stored replicates): {refresh:.2f} s "
        f"(median of 3; goal <= 1 s); the benchmark rows alone by the previous path (every task's matrix "
        f"rebuilt): {rebuild:.2f} s, {rebuild / refresh:.1f}x the whole refresh"
    )


COOKIE = {"value": ""}  # the signed-in pages' session cookie, set by sign_in()
PENDING = 50  # phrasings the bench user wrote, waiting in the review queue


def get(path: str) -> float:
    t0 = time.perf_counter()
    request = urllib.request.Request(f"http://127.0.0.1:{PORT}{path}", headers={"Cookie": COOKIE["value"]})
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()
        assert response.status == 200, path
    return time.perf_counter() - t0


def sign_in() -> None:
    """A superuser with a session made in-process (no login form to script), and a review queue to show."""
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model

    from collection.models import Collection, Instruction, InstructionRevision, Task, phrasing_key

    user = get_user_model().objects.filter(username="bench-admin").first()
    if user is None:
        user = get_user_model().objects.create_superuser("bench-admin", "bench@example.org", "bench-password")
    task = Task.objects.get(benchmark__slug="scale", slug="task-0")
    crowd = Collection.objects.get(slug="crowd")
    for n in range(PENDING - Instruction.objects.filter(author=user).count()):
        template = f"Pending phrasing {n}: {{question}}\n{{options}}"
        key = phrasing_key(benchmark_slug="scale", task_slug=task.slug, template=template)
        instruction = Instruction.objects.create(
            task=task, collection=crowd, author=user, status="pending", stable_key=key
        )
        revision = InstructionRevision.objects.create(instruction=instruction, number=1, template=template)
        instruction.current_revision = revision
        instruction.save(update_fields=["current_revision"])
    session = import_module(settings.SESSION_ENGINE).SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    COOKIE["value"] = f"{settings.SESSION_COOKIE_NAME}={session.session_key}"


def take_csrf_cookie() -> None:
    """Keep the CSRF cookie the first page sets, as a browser does: every later page view carries it."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{PORT}/b/scale/leaderboard/", headers={"Cookie": COOKIE["value"]}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        for header in response.headers.get_all("Set-Cookie") or []:
            if header.startswith("csrftoken="):
                COOKIE["value"] += "; " + header.split(";", 1)[0]


def bundle_bytes() -> tuple[int, int, str]:
    """plotly.js as a browser fetches it from the leaderboard page: bytes on the wire, uncompressed, encoding."""
    import gzip
    import re

    with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/b/scale/leaderboard/", timeout=30) as response:
        src = re.search(r'<script src="([^"]*plotly[^"]*)"', response.read().decode())[1]
    request = urllib.request.Request(f"http://127.0.0.1:{PORT}{src}", headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(request, timeout=30) as response:
        body = response.read()
        encoding = response.headers.get("Content-Encoding", "identity")
        cache = response.headers.get("Cache-Control", "")
    plain = gzip.decompress(body) if encoding == "gzip" else body
    return len(body), len(plain), f"{encoding}; {src}; Cache-Control: {cache}"


def latency(path: str, n: int) -> tuple[float, float]:
    get(path)  # warm up
    times = sorted(get(path) for _ in range(n))
    return statistics.median(times) * 1000, times[int(0.95 * (n - 1))] * 1000


def throughput(path: str, clients: int = 8, seconds: float = 8.0) -> tuple[float, int]:
    done, errors, stop = [0], [0], time.perf_counter() + seconds
    lock = threading.Lock()

    def client() -> None:
        while time.perf_counter() < stop:
            try:
                get(path)
                with lock:
                    done[0] += 1
            except Exception:
                with lock:
                    errors[0] += 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return done[0] / seconds, errors[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the seeded database for the next run")
    parser.add_argument("--reseed", action="store_true", help="drop and seed again")
    parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = parser.parse_args()
    size = SMOKE if args.smoke else FULL
    name = database_use(DB_NAME, smoke=args.smoke)
    database_ensure(name, drop=args.reseed or args.smoke)
    import django

    django.setup()
    phrasings = size.tasks * size.phrasings_per_task
    print(f"seeding {size.models} models x {phrasings} phrasings x {size.instances} instances")
    seed(size)
    refresh_after_one_run()
    from collection.models import Instruction
    from evaluation.models import ModelVariant, ScoringRun

    phrasing = Instruction.objects.filter(task__slug="task-0").order_by("id").first().id
    a, b = ModelVariant.objects.order_by("model__name").values_list("id", flat=True)[:2]
    model = ModelVariant.objects.get(id=a).model.name
    run = ScoringRun.objects.order_by("id").values_list("id", flat=True).first()
    sign_in()
    static_root = Path(tempfile.mkdtemp(prefix="bench-static-"))
    env = {**os.environ, "DEBUG": "false", "ALLOWED_HOSTS": "127.0.0.1", "STATIC_ROOT": str(static_root)}
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
        cwd=REPO,
        env=env,
        check=True,
    )
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "core.wsgi",
            "-b",
            f"127.0.0.1:{PORT}",
            "-w",
            "2",
            "--log-level",
            "warning",
        ],
        cwd=REPO,
        env=env,
    )
    try:
        for _ in range(100):
            try:
                get("/healthz")
                break
            except Exception:
                time.sleep(0.2)
        take_csrf_cookie()
        pages = [
            ("trivial view (/healthz)", "/healthz"),
            ("home page (leaders)", "/"),
            ("leaderboard page", "/b/scale/leaderboard/"),
            ("leaderboard API", "/api/leaderboard/?benchmark=scale"),
            ("task grid page", "/b/scale/t/task-0/results/"),
            ("paired comparison page", f"/b/scale/compare/?a={a}&b={b}"),
            ("phrasing page", f"/phrasings/{phrasing}/"),
            ("models list", "/models/"),
            ("model page", f"/models/{model}/"),
            ("runs list", "/runs/"),
            *([("run page", f"/runs/{run}/")] if run else []),
            ("status page", "/status/"),
            ("tasks list", "/b/scale/"),
            ("review queue (signed in)", "/curate/"),
            ("my phrasings (signed in)", "/me/phrasings/"),
        ]
        print(
            f"\nserver: gunicorn, 2 sync workers, on loopback; {size.requests} sequential requests each, "
            f"then 8 clients for {size.seconds:g} s"
        )
        print(f"{'page':28} {'median ms':>10} {'p95 ms':>8} {'req/s':>8} {'errors':>7} {'vs trivial':>10}")
        base, worst, failed = None, (0.0, ""), 0
        for label, path in pages:
            median, p95 = latency(path, size.requests)
            rps, errors = throughput(path, seconds=size.seconds)
            failed += errors
            base = base or rps
            print(f"{label:28} {median:10.1f} {p95:8.1f} {rps:8.1f} {errors:7d} {rps / base:9.2f}x")
            worst = max(worst, (p95, label)) if label != pages[0][0] else worst
        print(f"slowest p95: {worst[0]:.1f} ms ({worst[1]}); goal < 150 ms for every page")
        wire, plain, how = bundle_bytes()
        print(f"chart bundle: {wire:,} bytes on the wire, {plain:,} uncompressed ({how}); goal <= 1,500,000")
    finally:
        shutil.rmtree(static_root, ignore_errors=True)
        server.terminate()
        server.wait(timeout=20)
        if not args.keep:
            database_drop(name)
    if failed:
        sys.exit(f"{failed} requests failed")


if __name__ == "__main__":
    main()
