"""Load: concurrent phrasing submissions and leaderboard reads against the app with a real worker, then
check that every submission is stored exactly once and every approved phrasing is scored.

    .venv/bin/python bench/load.py                 # --help for clients, duration and mix

Setup, all on loopback: a fresh PostgreSQL database (phrasebench_load, on the server of DATABASE_URL), the
demo benchmark, a tiny T5 (evaluation/ml/build.py) registered and active, 20 authors and a curator with
API tokens; gunicorn (2 sync workers) and one Celery worker (queues default and gpu) on Redis
(TEST_REDIS_URL's server, db 13). Load: C client threads for D seconds; each request is, at random, a
submission (POST /api/instructions/ with a unique phrasing, as one of the authors) or a read (the
leaderboard page, the leaderboard API or the task page). Afterwards the curator approves every stored
submission through the API, the worker scores them, and the script checks:
- stored exactly once: every 201 answer's phrasing is in the database once, and nothing else was added;
- scored: every approved phrasing has a prediction for each instance of its task's evaluation sample.
Printed: requests/s by kind, errors (any non-2xx, or a transport error), lost submissions, unscored phrasings.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SERVER = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres").rsplit("/", 1)[0]
DB_NAME = "phrasebench_load"
REDIS = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15").rsplit("/", 1)[0] + "/13"
PORT = 8766
AUTHORS = 20
SAMPLE = 10  # evaluation instances per task each phrasing is scored on (the tasks' eval_sample_size)


def env(tmp: Path) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CELERY_"))},
        "DATABASE_URL": f"{SERVER}/{DB_NAME}", "CELERY_BROKER_URL": REDIS, "VAR_DIR": str(tmp),
        "SCORING_DEVICE": "cpu", "SUBMISSIONS_PER_HOUR": "1000000", "ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SETTINGS_MODULE": "core.settings",
    }


def manage(environment: dict, *args: str) -> str:
    out = subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=environment, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"manage.py {' '.join(args[:2])} failed:\n{out.stderr[-2000:]}")
    return out.stdout


def setup(environment: dict, tmp: Path) -> dict:
    import psycopg
    import redis

    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}"')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    redis.Redis.from_url(REDIS).flushdb()
    manage(environment, "migrate", "--noinput", "-v", "0")
    manage(environment, "load_demo")
    model_dir = tmp / "tiny-t5"
    script = f"""
import json
from pathlib import Path
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from collection.models import Collection, Task
from core import services as core
from evaluation import registry
from evaluation.ml.build import build_model, train_tokenizer
tok = train_tokenizer(["Is 12 even? yes or no. Which number is larger? A. 3 B. 4 positive negative"] * 50, "{model_dir}", vocab_size=300, add_eos=True)
build_model("t5", tok, "{model_dir}", seed=0)
Task.objects.filter(benchmark__slug="demo").update(eval_sample_size={SAMPLE})
registry.language_model_register(name="tiny-t5", source="{model_dir}", family="seq2seq",
    tuned_on=[Collection.objects.get(slug="demotune")], score=False)
tokens = {{}}
User = get_user_model()
for name, role in [(f"author{{i}}", "author") for i in range({AUTHORS})] + [("curator", "curator")]:
    user = User.objects.create_user(username=name)
    core.user_role_set(user=user, role=role)
    tokens[name] = Token.objects.create(user=user).key
task = Task.objects.get(benchmark__slug="demo", slug="parity")
print(json.dumps({{"tokens": tokens, "task": task.id}}))
"""
    return json.loads(manage(environment, "shell", "--no-imports", "-c", script).strip().splitlines()[-1])


def call(method: str, path: str, token: str | None = None, body: dict | None = None) -> tuple[int, dict | None]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{PORT}{path}", data=data, method=method)
    request.add_header("Host", "127.0.0.1")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Token {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read()
            is_json = response.headers.get("Content-Type", "").startswith("application/json")
            return response.status, (json.loads(text) if is_json else None)
    except urllib.error.HTTPError as exc:
        return exc.code, None


def load(info: dict, clients: int, seconds: float, write_share: float) -> dict:
    reads = ["/b/demo/leaderboard/", "/api/leaderboard/?benchmark=demo", "/b/demo/t/parity/"]
    authors = [name for name in info["tokens"] if name.startswith("author")]
    lock = threading.Lock()
    stats = {"submitted": [], "writes": 0, "reads": 0, "errors": [], "latency": {"write": [], "read": []}}
    deadline = time.monotonic() + seconds

    def client(number: int) -> None:
        rng = random.Random(number)
        while time.monotonic() < deadline:
            start = time.perf_counter()
            if rng.random() < write_share:
                text = f"Case {uuid.uuid4().hex[:12]}: is {{number}} an even number? yes or no."
                try:
                    status, body = call("POST", "/api/instructions/", info["tokens"][rng.choice(authors)],
                                        {"task": info["task"], "template": text})
                except OSError as exc:
                    status, body = f"transport: {exc}", None
                with lock:
                    stats["writes"] += 1
                    stats["latency"]["write"].append(time.perf_counter() - start)
                    if status == 201:
                        stats["submitted"].append((body["id"], text))
                    else:
                        stats["errors"].append(("POST /api/instructions/", status))
            else:
                path = rng.choice(reads)
                try:
                    status, _ = call("GET", path)
                except OSError as exc:
                    status = f"transport: {exc}"
                with lock:
                    stats["reads"] += 1
                    stats["latency"]["read"].append(time.perf_counter() - start)
                    if status != 200:
                        stats["errors"].append((path, status))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats["elapsed"] = time.monotonic() - started
    return stats


def verify(environment: dict, submitted: list[tuple[int, str]], tmp: Path) -> dict:
    wanted_file = tmp / "submitted.json"  # a file, not the command line: it can exceed the argument limit
    wanted_file.write_text(json.dumps(submitted))
    script = f"""
import json
from collections import Counter
from pathlib import Path
from collection.models import Instruction
from evaluation.models import Prediction
wanted = json.loads(Path({str(wanted_file)!r}).read_text())
crowd = Instruction.objects.filter(task__slug="parity", author__username__startswith="author")
stored = Counter(i.template for i in crowd.select_related("current_revision"))
lost = sum(1 for _, text in wanted if stored[text] != 1)
extra = sum(n for text, n in stored.items() if text not in {{t for _, t in wanted}})
approved = crowd.filter(status="approved")
unscored = sum(1 for i in approved if Prediction.objects.filter(revision=i.current_revision).count() != {SAMPLE})
print(json.dumps({{"lost": lost, "extra": extra, "approved": approved.count(), "unscored": unscored}}))
"""
    return json.loads(manage(environment, "shell", "--no-imports", "-c", script).strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--write-share", type=float, default=0.2, help="Share of requests that are submissions.")
    parser.add_argument("--keep", action="store_true", help="Keep the database afterwards.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        environment = env(Path(tmp))
        info = setup(environment, Path(tmp))
        web = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "core.wsgi", "-b", f"127.0.0.1:{PORT}", "-w", "2", "--log-level", "warning"],
            cwd=REPO, env=environment,
        )
        worker_log = open(Path(tmp) / "worker.log", "w")
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "core", "worker", "-Q", "default,gpu", "--pool", "solo",
             "-n", "load@%h", "--loglevel", "WARNING"], cwd=REPO, env=environment, stdout=worker_log, stderr=worker_log,
        )
        try:
            for _ in range(100):
                try:
                    if call("GET", "/healthz")[0] == 200:
                        break
                except OSError:
                    time.sleep(0.2)
            stats = load(info, args.clients, args.seconds, args.write_share)
            # The curator approves every stored submission; the worker scores each on the tiny model.
            curator = info["tokens"]["curator"]
            review_errors = [
                status for id_, _ in stats["submitted"]
                if (status := call("POST", f"/api/instructions/{id_}/review/", curator, {"decision": "approved"})[0]) != 200
            ]
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                result = verify(environment, stats["submitted"], Path(tmp))
                if result["unscored"] == 0:
                    break
                time.sleep(3)
        finally:
            web.terminate()
            worker.terminate()
            web.wait(timeout=30)
            worker.wait(timeout=60)
            worker_log.close()
    if not args.keep:
        import psycopg

        with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
    total = stats["reads"] + stats["writes"]
    p95 = {k: statistics.quantiles(v, n=20)[-1] * 1000 if len(v) > 1 else float("nan") for k, v in stats["latency"].items()}
    print(f"{args.clients} clients for {stats['elapsed']:.0f} s on loopback (gunicorn 2 workers, 1 Celery worker), "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"requests      {total:>6}  {total / stats['elapsed']:>7.1f}/s")
    print(f"  reads       {stats['reads']:>6}  {stats['reads'] / stats['elapsed']:>7.1f}/s  p95 {p95['read']:.0f} ms")
    print(f"  submissions {stats['writes']:>6}  {stats['writes'] / stats['elapsed']:>7.1f}/s  p95 {p95['write']:.0f} ms")
    print(f"errors        {len(stats['errors']) + len(review_errors):>6}  {sorted(set(map(str, stats['errors'])))[:5]}")
    print(f"lost          {result['lost']:>6}  (submissions answered 201 but not stored exactly once; extra rows: {result['extra']})")
    print(f"approved      {result['approved']:>6}  unscored {result['unscored']}")


if __name__ == "__main__":
    main()
