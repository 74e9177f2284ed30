"""Start real Celery worker processes for tests about worker behaviour, against the test database."""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from django.db import connection

REPO = Path(__file__).resolve().parents[1]
# RabbitMQ, the broker README's "Configuration" names beside Redis for production (.ci/run starts it).
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"
# Every queue a task is sent to: core/settings.py's default, and the scoring lanes (evaluation/models.py).
QUEUES = ("default", "gpu", "gpu-bulk")


@contextlib.contextmanager
def rabbitmq_alone():
    """Hold RabbitMQ's queues for one test at a time across processes (both xdist processes, and a second test
    run on the machine): they are shared (one vhost), so two tests at once took each other's jobs (seen in
    CI). Redis tests need no such lock: each process has a database of its own (tests/conftest.py).
    The file is every user's (read-only suffices for flock): another user's test run, or one under umask 077,
    made it theirs alone, and every later run by someone else failed here with a PermissionError."""
    descriptor = _shared_lock_file(Path(tempfile.gettempdir()) / "phrasebench-tests-rabbitmq.lock")
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)


def _shared_lock_file(path: Path) -> int:
    """A descriptor of the lock file in the shared temporary folder, made for every user by whoever comes first.
    An existing file is opened without O_CREAT (fs.protected_regular refuses that on another user's file in a
    sticky folder), and never through a link or onto anything but a plain file: a link planted there would
    have had its target made world-writable, a FIFO would have blocked."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK
    while True:
        try:
            descriptor = os.open(path, flags)
        except FileNotFoundError:
            try:
                descriptor = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:
                continue  # another process made it meanwhile: open that one
            os.fchmod(descriptor, 0o666)  # past the umask: every user's
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
            os.close(descriptor)
            raise RuntimeError(f"{path} is not a plain file of its own: remove it")
        return descriptor


def rabbitmq_url() -> str:
    """TEST_AMQP_URL, else the local RabbitMQ, with our queues emptied of earlier tests' jobs (its queues are
    durable: a job a test left behind would reach the next test's worker, naming another database's rows).
    Skips when the local default does not answer; fails when TEST_AMQP_URL names a broker that does not, so a
    run that asked for RabbitMQ (CI's) never skips it."""
    from kombu import Connection

    url = os.environ.get("TEST_AMQP_URL")
    with Connection(url or AMQP_URL, connect_timeout=5) as conn:
        try:
            conn.ensure_connection(max_retries=1)
        except conn.connection_errors as exc:
            if url:
                raise
            pytest.skip(f"RabbitMQ at {AMQP_URL} does not answer ({exc}): start it or set TEST_AMQP_URL")
        for name in QUEUES:
            channel = conn.channel()
            try:
                channel.queue_purge(name)
            except conn.channel_errors:
                pass  # not declared yet: nothing in it (the broker closed this channel)
            finally:
                channel.close()
    return url or AMQP_URL


def rabbitmq_ready(url: str, queue: str) -> int:
    """Messages waiting in a RabbitMQ queue, not yet pushed to any worker (0 for a queue not declared yet)."""
    from kombu import Connection

    with Connection(url) as conn:
        try:
            return conn.channel().queue_declare(queue, passive=True).message_count
        except conn.channel_errors:
            return 0


def worker_database_url() -> str:
    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        # The test database's file (tests/conftest.py keeps it on disk on SQLite), with bin/run's options.
        assert not connection.is_in_memory_db(), "worker tests on SQLite need the test database in a file"
        from core.env import sqlite_url

        return sqlite_url(s["NAME"])
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    return f"postgres://{s['USER']}{password}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def process_env(**overrides: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CELERY_", "DATABASE_URL", "PYTEST", "TEST_REDIS"))
    }
    env.update(DATABASE_URL=worker_database_url(), PYTHONUNBUFFERED="1", **overrides)
    return env


@contextlib.contextmanager
def running_worker(env: dict[str, str], *, queues: str = "default", log: Path):
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "core",
        "worker",
        "-Q",
        queues,
        "--pool",
        "solo",
        "--without-gossip",
        "--without-mingle",
        "--loglevel",
        "INFO",
        "-n",
        f"test-{os.getpid()}@%h",
    ]
    with log.open("w", encoding="utf-8") as out:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


# A ping from another process; it prints the ping's id (core/services.py worker_ping_send).
SEND_PING = "from core.services import worker_ping_send; print(worker_ping_send().id)"


def send_score_run(env: dict[str, str], run_id: int) -> None:
    """Send a scoring run's job from another process (in the test's own, Celery runs tasks inline)."""
    manage(
        env,
        "shell",
        "--no-imports",
        "-c",
        f"from evaluation.tasks import score_run; score_run.delay({run_id})",
    )


def wait_for(predicate, *, timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    tail = log.read_text(encoding="utf-8")[-3000:] if log and log.exists() else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{tail}")
