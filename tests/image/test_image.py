"""The deployment we ship (Dockerfile, docker-compose.yml), built and brought up as the README says, without
Docker (tests/image/replay.py says what stands in for what): the image installs what CI tested, `web` passes
its own health check, the pages answer with a TLS proxy's headers, the deployment checklist passes inside it,
the workers score a model and a soft prompt kept on the shared volume (the figures on the leaderboard), a
release written by a worker is served by web, no service logs an error, and each stops on SIGTERM. The tests
run in file order on one deployment (the later ones use the model the earlier ones registered).

Run by bin/image-check (CI runs it after bin/test): it needs root, `unshare` and a network for pip, and takes
minutes; `IMAGE_CHECK_REQUIRED=1` turns its skips into failures.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests

from tests.image import replay

pytestmark = pytest.mark.image

HOST = "phrasebench.example.org"  # docker-compose.yml's default PHRASEBENCH_HOST
PROXY = {"Host": HOST, "X-Forwarded-Proto": "https"}  # what the README's TLS proxy must send
REDIS_DB = int(os.environ.get("IMAGE_CHECK_REDIS_DB", "12"))
UP_SECONDS = 600  # web: migrate on an empty database, then refresh_figures, then gunicorn
SCORED_SECONDS = 600


def _unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root (mount namespaces, useradd in the image's /etc)"
    if not shutil.which("unshare") or not shutil.which("setpriv"):
        return "needs util-linux's unshare and setpriv"
    if subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode != 0:
        return "this machine refuses mount namespaces (unshare -m)"
    if replay.base_python() is None:
        return "needs a python3.11 every user may run (the stand-in for the python:3.11-slim base image)"
    return None


@pytest.fixture(scope="module")
def work():
    reason = _unavailable()
    if reason:
        if os.environ.get("IMAGE_CHECK_REQUIRED") == "1":
            pytest.fail(f"the image check cannot run here: {reason}")
        pytest.skip(f"the image check cannot run here: {reason}")
    # Not under /tmp: every container gets a tmpfs there, which would hide the image's tree.
    folder = Path(tempfile.mkdtemp(prefix="phrasebench-image-", dir="/var/tmp"))
    folder.chmod(0o755)
    yield folder
    if os.environ.get("IMAGE_CHECK_KEEP") != "1":
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def image(work):
    # The CPU torch wheel on this machine's disk stands in for download.pytorch.org's (see replay.py).
    image = replay.image_build(work / "build", build_args={"TORCH_INDEX": "https://pypi.org/simple"})
    for command, seconds in image.steps:
        print(f"RUN {command[:100]}: {seconds:.0f} s")
    return image


@pytest.fixture(scope="module")
def deployment(image, work):
    # The cpu profile: no GPU here (the gpu profile's service differs in its image's torch and its device).
    deployment = replay.compose_deployment(
        image, work, redis_db=REDIS_DB, secret=secrets.token_urlsafe(60), profiles=("cpu",)
    )
    subprocess.run(["redis-cli", "-n", str(REDIS_DB), "flushdb"], check=True, capture_output=True)
    try:
        deployment.up(timeout=UP_SECONDS)
        print(f"web healthy after {deployment.services['web'].healthy_after:.0f} s")
        yield deployment
    finally:
        deployment.stop()
        for service in deployment.services.values():
            print(f"--- {service.name} (last lines) ---\n{service.log_tail(3000)}")
        replay.postgres_database_drop()


def _get(deployment, path: str, **kwargs) -> requests.Response:
    headers = {**PROXY, **kwargs.pop("headers", {})}
    return requests.get(
        f"http://127.0.0.1:{deployment.port}{path}",
        headers=headers,
        timeout=60,
        allow_redirects=False,
        **kwargs,
    )


def _pins() -> dict[str, str]:
    pins = {}
    for line in (replay.REPO / "constraints.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            name, version = line.split("==")
            pins[_normal(name)] = version.strip()
    return pins


def _normal(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(".", "-")


def test_the_image_installs_the_versions_ci_tested(image):
    root = replay.Container(image, "root", image.env, image.workdir)
    listing = json.loads(root.run(["pip", "list", "--format", "json"]).stdout)
    installed = {_normal(p["name"]): p["version"] for p in listing}
    pins = _pins()
    differ = {
        name: f"{installed[name]} (constraints.txt: {pins[name]})"
        for name in pins
        if name in installed and installed[name] != pins[name]
    }
    assert not differ, f"the image installs other versions than CI tested: {differ}"
    # The pins it lacks are the test and bench tools'; what it has beyond them is torch, pip and the project.
    unpinned = set(installed) - set(pins) - {"torch", "phrasebench", "pip", "setuptools", "wheel"}
    if replay.base_python_version() < (3, 11, 3):
        # redis-py needs it below Python 3.11.3: the stand-in's Debian 3.11.2 does; CI's and the image's don't.
        unpinned.discard("async-timeout")
    assert not unpinned, f"the image installs what constraints.txt does not pin: {sorted(unpinned)}"
    assert installed["torch"].split("+")[0] == "2.13.0"
    assert "phrasebench" in installed
    root.run(["pip", "check"])


def test_web_passes_its_compose_health_check(deployment):
    # deployment.up() waited for it (the workers depend on it); here once more, to say so on its own.
    result = deployment.services["web"].health()
    assert result.returncode == 0, f"{result.stdout}{result.stderr}"


def test_pages_answer_through_the_tls_proxy(deployment):
    for path in ("/", "/models/", "/status/", "/api/tasks/", "/accounts/login/", "/api/schema/"):
        response = _get(deployment, path)
        assert response.status_code == 200, f"{path}: {response.status_code} {response.text[:500]}"
        assert "max-age=31536000" in response.headers.get("Strict-Transport-Security", ""), path
    page = _get(deployment, "/").text
    stylesheet = next(part.split('"')[0] for part in page.split('href="/static/')[1:] if ".css" in part)
    static = _get(deployment, f"/static/{stylesheet}")
    assert static.status_code == 200, stylesheet
    assert "immutable" in static.headers.get("Cache-Control", ""), "collectstatic's hashed names are served"
    # Plain HTTP (no X-Forwarded-Proto) is sent to HTTPS; a host not in ALLOWED_HOSTS is refused.
    plain = _get(deployment, "/", headers={"X-Forwarded-Proto": "http"})
    assert plain.status_code == 301 and plain.headers["Location"] == f"https://{HOST}/"
    assert _get(deployment, "/", headers={"Host": "evil.example"}).status_code == 400


def test_the_deployment_checklist_passes_inside_web(deployment):
    result = deployment.exec(
        "web", ["python", "manage.py", "check", "--deploy", "--fail-level", "WARNING"], check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_workers_score_a_model_kept_on_the_shared_volume(deployment):
    """As a deployment adds a model: the demo benchmark loaded from web, a model put on the shared volume by the
    scoring worker's container (worker-cpu here; a hub download into HF_HOME lands there too), registered
    there; that worker scores it, the default worker refreshes the figures, and web shows them."""
    deployment.exec("web", ["python", "manage.py", "load_demo"])
    deployment.exec(
        "worker-cpu",
        [
            "python",
            "-c",
            "from pathlib import Path; from tests.evaluation.tiny import build; "
            "build('t5', Path('/app/shared/models'))",
        ],
    )
    deployment.exec(
        "worker-cpu",
        [
            "python",
            "manage.py",
            "register_model",
            "tiny-t5",
            "/app/shared/models/t5",
            "--family",
            "seq2seq",
            "--benchmark",
            "demo",
        ],
    )
    deadline, rows = time.monotonic() + SCORED_SECONDS, []
    while time.monotonic() < deadline:
        for name in ("worker-cpu", "worker-default"):
            process = deployment.services[name].process
            if process.poll() is not None:
                pytest.fail(f"{name} exited {process.returncode}:\n{deployment.services[name].log_tail()}")
        board = _get(deployment, "/api/leaderboard/?benchmark=demo")
        assert board.status_code == 200, board.text[:500]
        rows = [row for row in board.json()["results"] if row["model"] == "tiny-t5"]
        if rows and rows[0].get("avgp") is not None:
            break
        time.sleep(5)
    else:
        pytest.fail(
            f"no figures for tiny-t5 after {SCORED_SECONDS} s: {rows}\n"
            f"worker-cpu:\n{deployment.services['worker-cpu'].log_tail()}"
        )
    page = _get(deployment, "/b/demo/leaderboard/")
    assert page.status_code == 200 and "tiny-t5" in page.text


def test_a_soft_prompt_trained_in_one_container_is_scored_by_the_scoring_worker(deployment):
    """After the test above (tiny-t5 registered). The prompt is trained where the command runs (web's
    container, on its CPU: `--no-score` leaves the scoring to the workers) into SOFTPROMPT_DIR on the shared
    volume; the scoring worker's container loads it from there to score the held-out phrasings."""
    deployment.exec(
        "web",
        [
            "python",
            "manage.py",
            "train_softprompt",
            "--model",
            "tiny-t5",
            "--tokens",
            "2",
            "--steps",
            "3",
            "--instances",
            "2",
            "--paraphrases",
            "1",
            "--no-score",
        ],
    )
    probe = (
        "from evaluation.models import Prediction, SoftPrompt; s = SoftPrompt.objects.get(); "
        "print(s.status, Prediction.objects.filter(variant=s.variant).count())"
    )
    deadline, state = time.monotonic() + SCORED_SECONDS, ""
    while time.monotonic() < deadline:
        # The last line: Django's shell says first how many models it imported.
        state = (
            deployment.exec("web", ["python", "manage.py", "shell", "-c", probe])
            .stdout.splitlines()[-1]
            .split()
        )
        if state[0] == "succeeded" and int(state[1]) > 0:
            break
        time.sleep(5)
    else:
        pytest.fail(
            f"the soft prompt's predictions never came: {state}\n{deployment.services['worker-cpu'].log_tail()}"
        )
    shared = deployment.services["worker-cpu"].container.volumes[0][0]
    assert list((shared / "softprompts").rglob("adapter_config.json")), "the prompt is on the shared volume"


def test_the_scheduler_keeps_its_schedule_in_its_own_container(deployment):
    scheduler = deployment.services["scheduler"]
    var = scheduler.container.layer / "var"  # beat's shelve names its file celerybeat-schedule(.db)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(var.glob("celerybeat-schedule*")):
        assert scheduler.process.poll() is None, scheduler.log_tail()
        time.sleep(2)
    assert list(var.glob("celerybeat-schedule*")), scheduler.log_tail()
    assert scheduler.process.poll() is None, scheduler.log_tail()


def test_a_release_asked_for_through_the_api_is_written_by_a_worker_and_served_by_web(deployment):
    """An admin asks web for a release; worker-default writes it; web serves its files (RELEASES_DIR must be
    one both containers see)."""
    environment = {"DJANGO_SUPERUSER_PASSWORD": secrets.token_urlsafe(16)}
    deployment.exec(
        "web",
        [
            "env",
            *(f"{k}={v}" for k, v in environment.items()),
            "python",
            "manage.py",
            "createsuperuser",
            "--noinput",
            "--username",
            "operator",
            "--email",
            "operator@example.org",
        ],
    )
    token = deployment.exec("web", ["python", "manage.py", "drf_create_token", "operator"]).stdout.split()[2]
    asked = requests.post(
        f"http://127.0.0.1:{deployment.port}/api/releases/",
        json={"benchmarks": ["demo"], "name": "image-check", "version": "1"},
        headers={**PROXY, "Authorization": f"Token {token}"},
        timeout=60,
    )
    assert asked.status_code == 202, asked.text[:500]
    release = asked.json()
    deadline = time.monotonic() + 300
    while release["status"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(3)
        release = _get(deployment, f"/api/releases/{release['id']}/").json()
    assert release["status"] == "succeeded", release
    # Listed from the SHA256SUMS web reads in RELEASES_DIR: none when web cannot see what the worker wrote.
    assert len(release["files"]) >= 3, release
    for entry in release["files"]:
        path = entry["url"].split(HOST, 1)[1]
        download = _get(deployment, path)
        assert download.status_code == 200, f"{path}: {download.status_code}"
        if entry["sha256"]:  # SHA256SUMS, the list itself, lists no hash of its own
            assert hashlib.sha256(download.content).hexdigest() == entry["sha256"], path


def test_no_service_logged_an_error(deployment):
    """Last: every service's log so far, start-up included (workers started on an unmigrated database logged
    a traceback at start before they waited for web)."""
    for service in deployment.services.values():
        log = service.log_tail(10**7)
        # Tracebacks; Celery's "ERROR/"; Django's and gunicorn's "[ERROR]" and "[CRITICAL]" (worker timeouts).
        for mark in ("Traceback", "ERROR/", "[ERROR]", "[CRITICAL]"):
            assert mark not in log, f"{service.name} logged {mark}:\n{log[-6000:]}"
        # Progress bars (transformers' "Loading weights", sentence-transformers' "Batches"): a line per update.
        bars = re.findall(r".*\d+it/s\].*|.*s/it\].*", log)
        assert not bars, f"{service.name} logged progress bars:\n" + "\n".join(bars[:10])


def test_every_service_stops_on_sigterm_within_the_grace_period(deployment):
    """Last, as `docker compose stop`: SIGTERM to each container's PID 1, SIGKILL after 10 s. web's command
    left `sh` as PID 1, which ignores SIGTERM, so gunicorn was killed with its requests in flight."""
    stopped = deployment.stop()
    assert set(stopped) == set(deployment.services)
    assert all(seconds is not None for seconds in stopped.values()), f"killed after 10 s: {stopped}"
