"""Load: concurrent phrasing submissions and leaderboard reads against the app with a real worker, then
check that every submission is stored exactly once and every approved phrasing is scored.

    .venv/bin/python bench/load.py                 # --help for clients, duration and mix
    .venv/bin/python bench/load.py --smoke         # 2 clients for 3 s, database phrasebench_load_smoke

Setup, all on loopback: a fresh PostgreSQL database (phrasebench_load, on the server of DATABASE_URL), the
demo benchmark, a tiny T5 (evaluation/ml/build.py) registered and active, 20 authors and two curators with
API tokens; gunicorn (2 sync workers) and one Celery worker (queues default and gpu) on Redis
(TEST_REDIS_URL's server, db 12). Load: C client threads for D seconds; each request is, at random, a
submission (POST /api/instructions/ with a unique phrasing, as one of the authors) or a read (the
leaderboard page, the leaderboard API or the task page). Afterwards both curators approve every stored
submission at the same moment through the API (naming the revision read), the worker scores them, and the
script checks:
- decided once: per phrasing one approval answered 200 and the other 400 (already decided), and exactly one
  scoring run (no duplicate runs);
- stored exactly once: every 201 answer's phrasing is in the database once, and nothing else was added;
- scored: every approved phrasing has a prediction for each instance of its task's evaluation sample.
Printed: requests/s by kind, errors (any non-2xx, or a transport error), lost submissions, unscored phrasings.

    .venv/bin/python bench/load.py --embedded      # the embedded default under a burst of writes (issue 14)

--embedded: the app as bin/run serves it, with no DATABASE_URL: a SQLite file and the filesystem broker in a
temporary VAR_DIR, gunicorn with 2 sync workers, and one Celery worker scoring a tiny T5 one prediction per
batch, so that it writes all the time. At once, from one thread each: 25 phrasing submissions (the API, 25
authors) and 10 saves of the demo benchmark's admin change form (as demo-admin). Printed: answers by kind,
errors, submissions stored, predictions the worker wrote meanwhile, and "database is locked" in the server's
and the worker's logs. --sqlite-options replaces the database OPTIONS, through a settings module of the
bench's own, for a comparison: '{"timeout": 30}' (and so a file in rollback-journal mode) is the embedded
default before issue 14.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import http.cookies
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

from benchdb import SMOKE_HELP, bench_name, database_drop, database_ensure, database_url

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DB_NAME = "phrasebench_load"
# Below bin/test's Redis databases (15, and 14 and 13 for its two xdist processes), which the tests flush.
REDIS = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15").rsplit("/", 1)[0] + "/12"
PORT = 8766
AUTHORS = 20
SAMPLE = 10  # evaluation instances per task each phrasing is scored on (the tasks' eval_sample_size)


def env(tmp: Path, name: str) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CELERY_"))},
        "DATABASE_URL": database_url(name),
        "CELERY_BROKER_URL": REDIS,
        "VAR_DIR": str(tmp),
        "WORKER_DEVICE": "cpu",
        "SUBMISSIONS_PER_HOUR": "1000000",
        "ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SETTINGS_MODULE": "core.settings",
    }


def manage(environment: dict, *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        encoding="utf-8",
    )
    if out.returncode != 0:
        sys.exit(f"manage.py {' '.join(args[:2])} failed:\n{out.stderr[-2000:]}")
    return out.stdout


def setup(environment: dict, tmp: Path, name: str) -> dict:
    import redis

    database_ensure(name, drop=True)
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
from evaluation.runs import registry
from evaluation.ml.build import build_model, train_tokenizer
tok = train_tokenizer(["Is 12 even? yes or no. Which number is larger? A. 3 B. 4 positive negative"] * 50, "{model_dir}", vocab_size=300, add_eos=True)
build_model("t5", tok, "{model_dir}", seed=0)
Task.objects.filter(benchmark__slug="demo").update(eval_sample_size={SAMPLE})
registry.language_model_register(name="tiny-t5", source="{model_dir}", family="seq2seq",
    tuned_on=[Collection.objects.get(slug="demotune")], score=False, check_now=True)
tokens = {{}}
User = get_user_model()
for name, role in [(f"author{{i}}", "author") for i in range({AUTHORS})] + [("curator", "curator"), ("curator2", "curator")]:
    user = User.objects.create_user(username=name)
    core.user_role_set(user=user, role=role)
    tokens[name] = Token.objects.create(user=user).key
task = Task.objects.get(benchmark__slug="demo", slug="parity")
print(json.dumps({{"tokens": tokens, "task": task.id}}))
"""
    return json.loads(manage(environment, "shell", "--no-imports", "-c", script).strip().splitlines()[-1])


def call(
    method: str, path: str, token: str | None = None, body: dict | None = None
) -> tuple[int, dict | None]:
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
                    status, body = call(
                        "POST",
                        "/api/instructions/",
                        info["tokens"][rng.choice(authors)],
                        {"task": info["task"], "template": text},
                    )
                except OSError as exc:
                    status, body = f"transport: {exc}", None
                with lock:
                    stats["writes"] += 1
                    stats["latency"]["write"].append(time.perf_counter() - start)
                    if status == 201:
                        stats["submitted"].append((body["id"], text, body["revision"]))
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


def concurrent_reviews(info: dict, submitted: list[tuple[int, str, int]]) -> dict:
    """Each submission approved by both curators at the same moment; the answers counted per phrasing."""
    from concurrent.futures import ThreadPoolExecutor

    def approve(job):
        (id_, _, revision), token = job
        body = {"decision": "approved", "revision": revision}
        return id_, call("POST", f"/api/instructions/{id_}/review/", token, body)[0]

    curators = [info["tokens"]["curator"], info["tokens"]["curator2"]]
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(approve, [(entry, token) for entry in submitted for token in curators]))
    per_phrasing: dict[int, list] = {}
    for id_, status in answers:
        per_phrasing.setdefault(id_, []).append(status)
    # Per phrasing: one 200 and one 400 (already decided); anything else is an error.
    errors = [(id_, sorted(s)) for id_, s in per_phrasing.items() if sorted(s) != [200, 400]]
    return {"reviews": len(answers), "errors": errors}


def verify(environment: dict, submitted: list[tuple[int, str, int]], tmp: Path) -> dict:
    wanted_file = tmp / "submitted.json"  # a file, not the command line: it can exceed the argument limit
    wanted_file.write_text(json.dumps(submitted), encoding="utf-8")
    script = f"""
import json
from collections import Counter
from pathlib import Path
from collection.models import Instruction
from evaluation.models import Prediction, ScoringRun
wanted = json.loads(Path({str(wanted_file)!r}).read_text())
crowd = Instruction.objects.filter(task__slug="parity", author__username__startswith="author")
stored = Counter(i.template for i in crowd.select_related("current_revision"))
lost = sum(1 for _, text, _ in wanted if stored[text] != 1)
extra = sum(n for text, n in stored.items() if text not in {{t for _, t, _ in wanted}})
approved = crowd.filter(status="approved")
unscored = sum(1 for i in approved if Prediction.objects.filter(revision=i.current_revision).count() != {SAMPLE})
# One active model: each approved phrasing must have exactly one run of its own, however many approvals raced.
runs = Counter(ScoringRun.objects.filter(instruction__in=approved).values_list("instruction_id", flat=True))
duplicate_runs = sum(n - 1 for n in runs.values() if n > 1)
print(json.dumps({{"lost": lost, "extra": extra, "approved": approved.count(), "unscored": unscored,
                  "duplicate_runs": duplicate_runs}}))
"""
    return json.loads(manage(environment, "shell", "--no-imports", "-c", script).strip().splitlines()[-1])


EMBEDDED_SUBMISSIONS = 25
EMBEDDED_ADMIN_SAVES = 10


def embedded_env(tmp: Path, sqlite_options: str | None) -> dict[str, str]:
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CELERY_", "DATABASE_URL"))},
        "VAR_DIR": str(tmp),
        "WORKER_DEVICE": "cpu",
        "SUBMISSIONS_PER_HOUR": "1000000",
        "HF_HUB_OFFLINE": "1",
        "ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SETTINGS_MODULE": "core.settings",
    }
    if sqlite_options:
        # The bench's own settings module, read by every process: the app's settings with other OPTIONS.
        options = json.loads(sqlite_options)
        (tmp / "bench_settings.py").write_text(
            f"from core.settings import *  # noqa: F403\nDATABASES['default']['OPTIONS'] = {options!r}\n",
            encoding="utf-8",
        )
        environment.update(DJANGO_SETTINGS_MODULE="bench_settings", PYTHONPATH=str(tmp))
    return environment


def embedded_setup(environment: dict, tmp: Path) -> dict:
    manage(environment, "migrate", "--noinput", "-v", "0")
    manage(environment, "load_demo", "--accounts")
    model_dir = tmp / "tiny-t5"
    script = f"""
import json
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from collection.models import Benchmark, Task
from core import services as core
from evaluation.runs import registry
from evaluation.ml.build import build_model, train_tokenizer
corpus = ["Is 12 even? yes or no. Which number is larger? A. 3 B. 4 positive negative"] * 50
tok = train_tokenizer(corpus, "{model_dir}", vocab_size=300, add_eos=True)
build_model("t5", tok, "{model_dir}", seed=0)
# Batches of one: the worker commits every prediction on its own, and so writes all through the burst.
registry.language_model_register(name="tiny-t5", source="{model_dir}", family="seq2seq", batch_size=1)
tokens = []
for i in range({EMBEDDED_SUBMISSIONS}):
    user = get_user_model().objects.create_user(username=f"embedded-author{{i}}")
    core.user_role_set(user=user, role="author")
    tokens.append(Token.objects.create(user=user).key)
b = Benchmark.objects.get(slug="demo")
form = {{"slug": b.slug, "name": b.name, "description": b.description, "source": b.source}}
task = Task.objects.get(benchmark=b, slug="parity")
print(json.dumps({{"tokens": tokens, "task": task.id, "benchmark": b.id, "form": form}}))
"""
    return json.loads(manage(environment, "shell", "--no-imports", "-c", script).strip().splitlines()[-1])


def form_request(
    method: str, path: str, cookies: dict[str, str], fields: dict | None = None
) -> tuple[int, dict[str, str]]:
    """A browser's request to a Django form, redirects not followed: the status, and the cookies it sets."""
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
    headers = {"Host": "127.0.0.1", "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}
    body = None
    if fields is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        body = urllib.parse.urlencode({**fields, "csrfmiddlewaretoken": cookies.get("csrftoken", "")})
    try:
        conn.request(method, path, body, headers)
        response = conn.getresponse()
        response.read()
        jar = http.cookies.SimpleCookie()
        for header in response.headers.get_all("Set-Cookie") or []:
            jar.load(header)
        return response.status, {name: morsel.value for name, morsel in jar.items()}
    finally:
        conn.close()


def admin_login(username: str, password: str) -> dict[str, str]:
    cookies = form_request("GET", "/admin/login/", {})[1]
    status, new = form_request("POST", "/admin/login/", cookies, {"username": username, "password": password})
    if status != 302:
        sys.exit(f"admin login as {username} answered {status}")
    return {**cookies, **new}


def prediction_count(database: Path) -> int:
    with contextlib.closing(sqlite3.connect(database, timeout=30)) as conn:
        return conn.execute("SELECT count(*) FROM evaluation_prediction").fetchone()[0]


def embedded_burst(info: dict, cookies: dict[str, str]) -> dict:
    """Every submission and admin save at once, one thread each; the answers' statuses by kind."""
    admin_path = f"/admin/collection/benchmark/{info['benchmark']}/change/"

    def submit(i: int, token: str) -> int | str:
        template = f"Embedded {uuid.uuid4().hex[:8]}, case {i}: is {{number}} even? yes or no."
        return call("POST", "/api/instructions/", token, {"task": info["task"], "template": template})[0]

    def save(i: int) -> int | str:
        fields = {**info["form"], "description": f"Edited during the burst ({i}).", "_save": "Save"}
        return form_request("POST", admin_path, cookies, fields)[0]

    jobs = [("submission", submit, (i, token)) for i, token in enumerate(info["tokens"])]
    jobs += [("admin save", save, (i,)) for i in range(EMBEDDED_ADMIN_SAVES)]
    start = threading.Barrier(len(jobs))
    statuses: dict[str, list] = {"submission": [], "admin save": []}
    lock = threading.Lock()

    def run(kind: str, send, args: tuple) -> None:
        start.wait()
        try:
            status = send(*args)
        except OSError as exc:
            status = f"transport: {exc}"
        with lock:
            statuses[kind].append(status)

    threads = [threading.Thread(target=run, args=job) for job in jobs]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"statuses": statuses, "elapsed": time.monotonic() - began}


@contextlib.contextmanager
def serving(environment: dict[str, str], tmp: Path, name: str, *, stop_worker):
    """gunicorn (2 sync workers, log in tmp/web.log) and one Celery worker on both queues (tmp/worker.log),
    yielded once /healthz answers; stopped afterwards, the worker by `stop_worker` (terminate or kill)."""
    with (
        open(tmp / "web.log", "w", encoding="utf-8") as web_log,
        open(tmp / "worker.log", "w", encoding="utf-8") as worker_log,
    ):
        web = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "core.wsgi", "-b", f"127.0.0.1:{PORT}", "-w", "2"],
            cwd=REPO,
            env=environment,
            stdout=web_log,
            stderr=web_log,
        )
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "core",
                "worker",
                "-Q",
                "gpu,default,gpu-bulk",
                "--pool",
                "solo",
            ]
            + ["-n", f"{name}@%h", "--loglevel", "WARNING"],
            cwd=REPO,
            env=environment,
            stdout=worker_log,
            stderr=worker_log,
        )
        try:
            for _ in range(100):
                try:
                    if call("GET", "/healthz")[0] == 200:
                        break
                except OSError:
                    time.sleep(0.2)
            yield
        finally:
            web.terminate()
            stop_worker(worker)
            web.wait(timeout=30)
            worker.wait(timeout=60)


def embedded(sqlite_options: str | None) -> None:
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        environment = embedded_env(tmp, sqlite_options)
        info = embedded_setup(environment, tmp)
        database = tmp / "db.sqlite3"
        with contextlib.closing(sqlite3.connect(database)) as conn:
            journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
        # A warm shutdown of the worker would wait for the whole scoring run: kill it.
        with serving(environment, tmp, "embedded", stop_worker=subprocess.Popen.kill):
            cookies = admin_login("demo-admin", "phrasebench-demo")
            deadline = time.monotonic() + 120
            while prediction_count(database) == 0 and time.monotonic() < deadline:
                time.sleep(0.5)
            before = prediction_count(database)
            result = embedded_burst(info, cookies)
            during = prediction_count(database) - before
        with contextlib.closing(sqlite3.connect(database, timeout=30)) as conn:
            stored = conn.execute(
                "SELECT count(*) FROM collection_instruction i JOIN auth_user u ON u.id = i.author_id"
                " WHERE u.username LIKE 'embedded-author%'"
            ).fetchone()[0]
        logs = {
            "server": (tmp / "web.log").read_text(encoding="utf-8"),
            "worker": (tmp / "worker.log").read_text(encoding="utf-8"),
        }
    print(
        f"embedded default: SQLite file in {journal} mode, OPTIONS {sqlite_options or 'of core/env.py'}; "
        f"gunicorn 2 workers, 1 Celery worker scoring; load average {os.getloadavg()[0]:.2f}"
    )
    refused = 0
    for kind, ok in [("submission", 201), ("admin save", 302)]:
        answers = result["statuses"][kind]
        errors = sorted(str(status) for status in answers if status != ok)
        refused += len(errors)
        print(
            f"  {kind + 's':<12} {len(answers):>3} at once: {len(answers) - len(errors):>3} ok, "
            f"{len(errors):>3} errors  {errors[:3]}"
        )
    print(f"stored        {stored:>3} of {EMBEDDED_SUBMISSIONS} submissions, in {result['elapsed']:.1f} s")
    print(f"predictions   {during:>3} written by the worker during the burst")
    error = "django.db.utils.OperationalError: database is locked"  # once in each traceback
    print(f"{error}: " + ", ".join(f"{name} log {text.count(error)}" for name, text in logs.items()))
    # Other OPTIONS are measured to show what they lose; the app's own may lose nothing.
    if sqlite_options is None and (refused or stored != EMBEDDED_SUBMISSIONS):
        sys.exit(f"failed: {refused} requests refused, {stored} of {EMBEDDED_SUBMISSIONS} submissions stored")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument(
        "--write-share", type=float, default=0.2, help="Share of requests that are submissions."
    )
    parser.add_argument("--keep", action="store_true", help="Keep the database afterwards.")
    parser.add_argument("--embedded", action="store_true", help="The embedded default, a burst of writes.")
    parser.add_argument("--sqlite-options", help="With --embedded: the database OPTIONS instead, as JSON.")
    parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = parser.parse_args()
    name = bench_name(DB_NAME, smoke=args.smoke)
    if args.smoke:
        args.clients, args.seconds = 2, 3.0
    if args.embedded:
        embedded(args.sqlite_options)
        return
    with tempfile.TemporaryDirectory() as tmp:
        environment = env(Path(tmp), name)
        info = setup(environment, Path(tmp), name)
        with serving(environment, Path(tmp), "load", stop_worker=subprocess.Popen.terminate):
            stats = load(info, args.clients, args.seconds, args.write_share)
            # Two curators approve every stored submission at once (naming the revision they read); exactly one
            # approval each may succeed, the other is refused as decided. The worker scores each on the tiny model.
            reviews = concurrent_reviews(info, stats["submitted"])
            review_errors = reviews["errors"]
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                result = verify(environment, stats["submitted"], Path(tmp))
                if result["unscored"] == 0:
                    break
                time.sleep(3)
    if not args.keep:
        database_drop(name)
    total = stats["reads"] + stats["writes"]
    p95 = {
        k: statistics.quantiles(v, n=20)[-1] * 1000 if len(v) > 1 else float("nan")
        for k, v in stats["latency"].items()
    }
    print(
        f"{args.clients} clients for {stats['elapsed']:.0f} s on loopback (gunicorn 2 workers, 1 Celery worker), "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print(f"requests      {total:>6}  {total / stats['elapsed']:>7.1f}/s")
    print(
        f"  reads       {stats['reads']:>6}  {stats['reads'] / stats['elapsed']:>7.1f}/s  p95 {p95['read']:.0f} ms"
    )
    print(
        f"  submissions {stats['writes']:>6}  {stats['writes'] / stats['elapsed']:>7.1f}/s  p95 {p95['write']:.0f} ms"
    )
    print(
        f"errors        {len(stats['errors']) + len(review_errors):>6}  {sorted(set(map(str, stats['errors'])))[:5]}"
    )
    print(
        f"lost          {result['lost']:>6}  (submissions answered 201 but not stored exactly once; extra rows: {result['extra']})"
    )
    print(f"approved      {result['approved']:>6}  unscored {result['unscored']}")
    print(
        f"reviews       {reviews['reviews']:>6}  (two curators at once per phrasing; errors counted above: "
        f"{len(review_errors)}); duplicate runs {result['duplicate_runs']}"
    )
    failures = {
        "errors": len(stats["errors"]) + len(review_errors),
        "lost": result["lost"],
        "extra rows": result["extra"],
        "unscored": result["unscored"],
        "duplicate runs": result["duplicate_runs"],
    }
    if any(failures.values()):
        sys.exit("failed: " + ", ".join(f"{k} {v}" for k, v in failures.items() if v))


if __name__ == "__main__":
    main()
