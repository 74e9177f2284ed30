"""The README's first command, run as a newcomer runs it: `bash bin/run` (without the long demo study) on a
fresh VAR_DIR, waited on until it prints its URL and the URL answers, then the main pages requested as a
browser would (a cookie jar, so the CSRF cookie comes back and the page cache serves the repeat views), as a
visitor and as the demo curator. Any 5xx, or a URL that never answers, fails the test; so does a progress
bar, warning or traceback in its console or its worker's log (what a newcomer reads).

It runs on the embedded default (SQLite, filesystem broker: what bin/run gives a newcomer) and on PostgreSQL
(a fresh database, as a deployment would point DATABASE_URL at), because queries that parse on one may not
on the other.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import psycopg
import pytest
import requests

pytestmark = pytest.mark.processes

REPO = Path(__file__).resolve().parents[2]
START_SECONDS = 600  # migrate, the demo benchmark with 64 generated phrasings per task, collectstatic
PAGES = [
    "/",
    "/b/demo/",
    "/b/demo/leaderboard/",
    "/b/demo/leaderboard/",  # again: the page cache's hit
    "/b/demo/leaderboard/?format=csv",
    "/b/demo/leaderboard/?format=json",
    "/b/demo/compare/",
    "/b/demo/t/parity/",
    "/b/demo/t/parity/results/",
    "/models/",
    "/status/",
    "/api/leaderboard/?benchmark=demo",
    "/api/tasks/",
    "/api/schema/",
    "/b/nosuch/leaderboard/",  # a 404, in the site's layout
]
CURATOR_PAGES = ["/curate/", "/runs/", "/plans/", "/me/phrasings/"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request):
    if request.param == "sqlite":
        yield None  # bin/run's own default
        return
    server = os.environ.get("DATABASE_URL", "")
    if not server.startswith("postgres"):
        pytest.skip("PostgreSQL: set DATABASE_URL to a PostgreSQL server (bin/test does)")
    name = f"binrun_{uuid.uuid4().hex[:8]}"
    admin = server.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield server.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def running(database_url, tmp_path):
    """bin/run --no-study in its own process group; yields its base URL, stops it and everything it started."""
    port = _free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE", "STATIC_ROOT")
    }
    env |= {"PORT": str(port), "VAR_DIR": str(tmp_path / "var"), "STATIC_ROOT": str(tmp_path / "static")}
    if database_url:
        env["DATABASE_URL"] = database_url
    log = tmp_path / "bin-run.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["bash", "bin/run", "--no-study"], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        url = _wait_for_url(process, log, port)
        yield url, log
    finally:
        _stop(process)


def _stop(process) -> None:
    """SIGTERM to the whole group (bin/run, gunicorn, the worker), SIGKILL if it lingers, and SIGKILL to
    whatever bin/run left behind (a failed test's stopped worker, which no SIGTERM ends)."""
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, None)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    if _left_in_session(process.pid):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _wait_for_url(process, log: Path, port: int) -> str:
    deadline = time.monotonic() + START_SECONDS
    url = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"bin/run exited with {process.returncode}:\n{log.read_text(encoding='utf-8')[-4000:]}"
            )
        if url is None:
            printed = re.search(
                r"PhraseBench is running at (http://\S+)", log.read_text(errors="replace", encoding="utf-8")
            )
            url = printed and printed.group(1).rstrip("/")
        if url:
            try:
                # gunicorn listens before its workers have loaded the app: a read may wait, or time out.
                if requests.get(url + "/healthz", timeout=30).ok:
                    assert url.endswith(f":{port}"), url
                    return url
            except requests.RequestException:
                pass
        time.sleep(1)
    pytest.fail(
        f"bin/run never answered within {START_SECONDS} s:\n{log.read_text(encoding='utf-8')[-4000:]}"
    )


def _get_all(session: requests.Session, url: str, pages: list[str]) -> list[str]:
    failures = []
    for page in pages:
        response = session.get(url + page, timeout=60, headers={"Accept": "text/html,*/*"})
        if response.status_code >= 500:
            failures.append(f"{response.status_code} {page}")
        elif page == "/b/nosuch/leaderboard/" and response.status_code != 404:
            failures.append(f"{response.status_code} (not 404) {page}")
    return failures


def test_bin_run_serves_the_main_pages_to_a_visitor_and_a_curator(running):
    url, log = running
    visitor = requests.Session()
    failures = _get_all(visitor, url, PAGES)
    assert "csrftoken" in visitor.cookies  # so the repeat leaderboard view went through the page cache

    curator = requests.Session()
    curator.get(url + "/accounts/login/", timeout=60)
    answer = curator.post(
        url + "/accounts/login/",
        data={
            "username": "demo-curator",
            "password": "phrasebench-demo",
            "csrfmiddlewaretoken": curator.cookies["csrftoken"],
        },
        headers={"Referer": url + "/accounts/login/"},
        timeout=60,
    )
    assert answer.ok and "sessionid" in curator.cookies, answer.status_code
    failures += _get_all(curator, url, PAGES + CURATOR_PAGES)
    assert not failures, f"{failures}\n{log.read_text(errors='replace', encoding='utf-8')[-6000:]}"
    _assert_quiet_logs(log)


# What a newcomer should not see in bin/run's console or its worker's log: progress bars (a line per update in
# a log; the worker logs its stderr as warnings) and warnings. Both logs had them: transformers' "Loading
# weights" and sentence-transformers' "Batches" bars, kombu's "No hostname was supplied" on the filesystem
# broker. A line is judged by its own text, so an access-log line for a URL holding the words would not count.
NOISE = re.compile(
    r"\d+it/s\]|s/it\]|\[WARNING\]|\[ERROR\]|\[CRITICAL\]|: (WARNING|ERROR|CRITICAL)/|Traceback"
)


def _assert_quiet_logs(log: Path) -> None:
    worker_log = log.parent / "var" / "worker.log"
    # The worker's start-up jobs (embedding the demo's phrasings) have run once its log stops growing: waited
    # on for 5 quiet seconds, a minute at most.
    deadline, quiet_since, size = time.monotonic() + 60, time.monotonic(), -1
    while time.monotonic() - quiet_since < 5 and time.monotonic() < deadline:
        time.sleep(1)
        if worker_log.stat().st_size != size:
            quiet_since, size = time.monotonic(), worker_log.stat().st_size
    for path in (log, worker_log):
        text = path.read_text(errors="replace", encoding="utf-8")
        # Django logs every 404 as a warning; the pages above ask for one on purpose.
        noise = [line for line in text.splitlines() if NOISE.search(line) and "Not Found: /" not in line]
        assert not noise, f"{path.name}:\n" + "\n".join(noise[:20])


def test_bin_run_says_a_port_in_use_before_anything_else(tmp_path):
    # It used to print "PhraseBench is running at ..." and then exit when gunicorn could not bind.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "STATIC_ROOT")}
        result = subprocess.run(
            ["bash", "bin/run", "--no-study"],
            cwd=REPO,
            env=env | {"PORT": str(port), "VAR_DIR": str(tmp_path / "var")},
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=START_SECONDS,
        )
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"bin/run: cannot listen on 127.0.0.1:{port} (Address already in use)" in result.stderr
    assert "is running" not in result.stdout and not (tmp_path / "var").exists()


def _left_in_session(session: int) -> list[str]:
    """The processes still running in the session bin/run led (started with start_new_session): its server,
    worker and their children keep the session id when they are orphaned."""
    left = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue  # gone meanwhile
        name, fields = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
        if int(fields[3]) == session and fields[0] != "Z":
            left.append(f"{entry.name} {name}")
    return left


def _hang_worker(session: int) -> None:
    """SIGSTOP to bin/run's Celery worker: a worker deep in a job that ignores its warm shutdown. A stopped
    process keeps a SIGTERM pending and only a SIGKILL ends it, so if it is gone afterwards, bin/run's kill
    after its 10-second wait is what ended it."""
    workers = []
    for line in _left_in_session(session):
        pid = line.split()[0]
        try:
            argv = (Path("/proc") / pid / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(arg.endswith(b"celery") for arg in argv) and b"worker" in argv:
            workers.append(int(pid))
    assert workers, _left_in_session(session)
    for pid in workers:
        os.kill(pid, signal.SIGSTOP)


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        # As gunicorn binds: TIME_WAIT, left by the test's own requests, is no obstacle.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


@pytest.mark.parametrize(
    "host, shown, stop",
    [
        # A closed terminal: SIGHUP to the whole process group (gunicorn reloads on it, the worker re-executes).
        ("::1", "[::1]", lambda pid: os.killpg(pid, signal.SIGHUP)),
        # A process manager, or Popen.terminate(): SIGTERM to bin/run alone, while the worker hangs (stopped:
        # only SIGKILL acts on it), so that bin/run's kill after 10 s is what ends it.
        ("0.0.0.0", "127.0.0.1", lambda pid: (_hang_worker(pid), os.kill(pid, signal.SIGTERM))),
        # Ctrl-C in the terminal: the kernel sends SIGINT to the foreground group, bin/run and all it started.
        ("127.0.0.1", "127.0.0.1", lambda pid: os.killpg(pid, signal.SIGINT)),
    ],
    ids=[
        "SIGHUP to the group, HOST=::1",
        "SIGTERM to bin/run, its worker hung, HOST=0.0.0.0",
        "Ctrl-C, SIGINT to the group",
    ],
)
def test_bin_run_stops_all_it_started_and_keeps_its_var_dir_to_itself(tmp_path, host, shown, stop):
    """Found on other machines' settings: a SIGHUP (a closed terminal) or a SIGTERM to bin/run left its server
    and worker running, orphaned, holding the port; HOST=::1 printed a URL and then died; HOST=0.0.0.0
    printed a URL that answered 400; a second bin/run on the same VAR_DIR ran beside the first."""
    port = _free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE", "STATIC_ROOT", "HOST")
    }
    env |= {"VAR_DIR": str(tmp_path / "var"), "STATIC_ROOT": str(tmp_path / "static")}
    log = tmp_path / "bin-run.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["bash", "bin/run", "--no-study"], cwd=REPO, env=env | {"HOST": host, "PORT": str(port)},
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        url = _wait_for_url(process, log, port)
        assert url == f"http://{shown}:{port}", url
        if host == "0.0.0.0":
            assert "list those in ALLOWED_HOSTS" in log.read_text(encoding="utf-8")
        second = subprocess.run(
            ["bash", "bin/run", "--no-study"], cwd=REPO, env=env | {"PORT": str(_free_port())},
            capture_output=True, text=True, encoding="utf-8", timeout=START_SECONDS,
        )  # fmt: skip
        assert second.returncode == 1, second.stdout + second.stderr
        assert (
            "bin/run: another bin/run (or the server or worker it started) is using VAR_DIR=" in second.stderr
        )
        assert "is running" not in second.stdout
        stop(process.pid)
        process.wait(timeout=60)
        deadline = time.monotonic() + 30
        while _left_in_session(process.pid) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not _left_in_session(process.pid), log.read_text(errors="replace", encoding="utf-8")[-3000:]
        assert _port_free(host, port)
    finally:
        _stop(process)
