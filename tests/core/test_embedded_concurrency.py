"""The embedded default (a SQLite file and the filesystem broker, no DATABASE_URL) under the writes that
made it fail (issue 14): 25 phrasing submissions and 10 admin saves at once, while a real Celery worker
writes predictions into the same file. The burst runs in its own process, one thread and one database
connection per request, as gunicorn's workers and the Celery worker would hold them."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from core.env import sqlite_url
from tests.workers import REPO, manage, running_worker, wait_for

SUBMISSIONS = 25
ADMIN_SAVES = 10
# The options env_database gave SQLite before issue 14; with them the file stays in rollback-journal mode.
OPTIONS_BEFORE = {"timeout": 30}


def burst(tag: str) -> dict:
    """Run in a subprocess (see run_burst): submit and save everything at once, as many clients would."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
    django.setup()
    from django.conf import settings

    if "BURST_DATABASE_OPTIONS" in os.environ:
        # The negative control: replace the options before any connection is opened.
        settings.DATABASES["default"]["OPTIONS"] = json.loads(os.environ["BURST_DATABASE_OPTIONS"])

    from django.contrib.auth import get_user_model
    from django.core.signals import got_request_exception
    from django.db import connection
    from django.forms.models import model_to_dict
    from django.test import Client
    from django.urls import reverse

    from collection.models import Benchmark, Instruction
    from core import roles, services
    from evaluation.models import Prediction

    # Create the authors and log every client in first, one at a time: both write, and only the burst counts.
    User = get_user_model()
    admin = User.objects.get(username="demo-admin")
    benchmark = Benchmark.objects.get(slug="demo")
    requests = []
    for i in range(SUBMISSIONS):
        author = User.objects.create_user(username=f"burst-{tag}-{i}")
        services.user_role_set(user=author, role=roles.AUTHOR)
        template = f"Burst {tag}, case {i}: is {{number}} an even number? yes or no."
        requests.append((author, reverse("phrasing_new", args=["demo", "parity"]), {"template": template}))
    for i in range(ADMIN_SAVES):
        form = {**model_to_dict(benchmark), "description": f"Edited in burst {tag} ({i}).", "_save": "Save"}
        requests.append((admin, reverse("admin:collection_benchmark_change", args=[benchmark.id]), form))
    clients = []
    for user, url, data in requests:
        # The test client listens to the global got_request_exception signal, so with threads it would
        # re-raise one request's exception in all of them: it answers with the status, and `failures` keeps
        # each thread's own exception.
        client = Client(HTTP_HOST="localhost", raise_request_exception=False)
        client.force_login(user)
        clients.append((client, url, data))
    predictions_before = Prediction.objects.count()
    connection.close()

    failures: dict[int, BaseException] = {}

    def remember(sender, **kwargs) -> None:
        failures[threading.get_ident()] = sys.exc_info()[1]

    got_request_exception.connect(remember)
    start = threading.Barrier(len(clients))
    outcomes: list[str] = []

    def post(client: Client, url: str, data: dict) -> None:
        start.wait()
        try:
            response = client.post(url, data)
        finally:
            connection.close()
        exc = failures.get(threading.get_ident())
        if exc is not None:
            outcomes.append(f"{response.status_code} {type(exc).__name__}: {exc}")
        elif response.status_code != 302:  # both forms redirect on success
            outcomes.append(f"{response.status_code} from {url}")
        else:
            outcomes.append("ok")

    threads = [threading.Thread(target=post, args=job) for job in clients]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    errors = [outcome for outcome in outcomes if outcome != "ok"]
    return {
        "ok": len(outcomes) - len(errors),
        "errors": len(errors),
        "first_errors": errors[:3],
        "stored": Instruction.objects.filter(author__username__startswith=f"burst-{tag}-").count(),
        "predictions_during": Prediction.objects.count() - predictions_before,
        "seconds": round(time.monotonic() - began, 1),
    }


def run_burst(env: dict[str, str], tag: str) -> dict:
    code = f"import json; from {__name__} import burst; print(json.dumps(burst({tag!r})))"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def scalar(database: Path, sql: str):
    with contextlib.closing(sqlite3.connect(database, timeout=30)) as conn:
        return conn.execute(sql).fetchone()[0]


def embedded_env(var_dir: Path) -> dict[str, str]:
    # Not tests.workers.process_env, which points at the PostgreSQL test database: here the app's embedded
    # default, with the filesystem broker under VAR_DIR because CELERY_BROKER_URL is unset.
    return {
        "PATH": os.environ["PATH"],
        "VAR_DIR": str(var_dir),
        "DATABASE_URL": sqlite_url(var_dir / "db.sqlite3"),
        "PYTHONUNBUFFERED": "1",
        "HF_HUB_OFFLINE": "1",
        "WORKER_DEVICE": "cpu",
    }


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory) -> Path:
    """A SQLite file with the demo benchmark and accounts, as bin/run sets it up."""
    var_dir = tmp_path_factory.mktemp("embedded")
    env = embedded_env(var_dir)
    manage(env, "migrate", "--noinput", "-v", "0")
    manage(env, "load_demo", "--accounts")
    return var_dir / "db.sqlite3"


@pytest.mark.worker
def test_the_embedded_default_takes_concurrent_submissions_and_admin_saves_while_a_worker_writes(
    demo_file, tiny_models
):
    var_dir = demo_file.parent
    env = embedded_env(var_dir)
    assert scalar(demo_file, "PRAGMA journal_mode") == "wal"
    # Batches of one: the worker commits a prediction at a time, so it writes all through the burst.
    model = str(tiny_models["t5"])
    manage(env, "register_model", "tiny-t5", model, "--family", "seq2seq", "--batch-size", "1")
    log = var_dir / "worker.log"

    def predictions() -> int:
        return scalar(demo_file, "SELECT count(*) FROM evaluation_prediction")

    with running_worker(env, queues="gpu,default,gpu-bulk", log=log) as worker:
        wait_for(lambda: predictions() > 0, timeout=60, what="the first predictions", log=log)
        result = run_burst(env, "after")
        written = predictions()
        # The worker carries on after the burst: none of its transactions failed.
        wait_for(lambda: predictions() > written, timeout=30, what="more predictions", log=log)
        worker.kill()  # a warm shutdown would wait for the whole scoring run
    assert result["errors"] == 0, result
    assert result["ok"] == SUBMISSIONS + ADMIN_SAVES
    assert result["stored"] == SUBMISSIONS
    assert result["predictions_during"] > 0, "the worker wrote nothing during the burst"
    assert scalar(demo_file, "SELECT count(*) FROM evaluation_scoringrun WHERE status = 'failed'") == 0
    assert "database is locked" not in log.read_text(encoding="utf-8")


def test_with_the_options_before_issue_14_the_same_burst_fails(demo_file, tmp_path):
    # The negative control: a copy of the file back in rollback-journal mode, and the options it had then.
    before = tmp_path / "db.sqlite3"
    with (
        contextlib.closing(sqlite3.connect(demo_file)) as source,
        contextlib.closing(sqlite3.connect(before)) as copy,
    ):
        source.backup(copy)
        assert copy.execute("PRAGMA journal_mode=DELETE").fetchone()[0] == "delete"
    env = {**embedded_env(tmp_path), "BURST_DATABASE_OPTIONS": json.dumps(OPTIONS_BEFORE)}
    result = run_burst(env, "before")
    assert result["errors"] > 0, result
    assert "database is locked" in " ".join(result["first_errors"]), result
