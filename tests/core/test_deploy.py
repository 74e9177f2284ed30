"""Production settings (as docker-compose.yml sets them) pass Django's deployment checklist with no warning."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": secrets.token_urlsafe(60),
    "ALLOWED_HOSTS": "phrasebench.example.org",
    "CSRF_TRUSTED_ORIGINS": "https://phrasebench.example.org",
    "SECURE_COOKIES": "true",
    "SECURE_SSL_REDIRECT": "true",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "SECURE_HSTS_PRELOAD": "true",
    "BEHIND_TLS_PROXY": "true",
}


def test_check_deploy_passes_with_production_settings(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST"))}
    env.update(PRODUCTION, VAR_DIR=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_the_compose_file_sets_every_production_setting():
    compose = (REPO / "docker-compose.yml").read_text(encoding="utf-8")
    for name in PRODUCTION:
        if name not in ("SECRET_KEY",):
            assert f"{name}:" in compose, f"docker-compose.yml does not set {name}"
    assert "SECRET_KEY_FILE" in compose  # from a Docker secret, never in the file


@pytest.mark.parametrize("method", ["get", "head"])
def test_the_health_check_answers_a_plain_request_by_address_in_production(client, settings, method):
    """Compose's health check asks http://127.0.0.1:8000/healthz inside the container: neither the host check
    nor the HTTPS redirect may stand in its way (they did: a 400, and `web` never became healthy)."""
    settings.ALLOWED_HOSTS = ["phrasebench.example.org"]
    settings.SECURE_SSL_REDIRECT = True
    assert getattr(client, method)("/healthz", HTTP_HOST="127.0.0.1:8000").status_code == 200
    # Every other path keeps both.
    assert client.get("/", HTTP_HOST="127.0.0.1:8000").status_code == 400
    redirect = client.get("/", HTTP_HOST="phrasebench.example.org")
    assert redirect.status_code == 301 and redirect["Location"] == "https://phrasebench.example.org/"


def test_the_build_context_leaves_out_what_git_ignores_and_the_secret_key():
    """.dockerignore's patterns match from the context's root (not at any depth, as .gitignore's do): it left
    out `.venv` but sent `.venv-lowest` (gigabytes), and the secret_key.txt the README has one write beside
    the compose file was copied into the image's layers. Matched as Docker matches (tests/image/replay.py)."""
    from tests.image.replay import dockerignore_matcher

    ignored = dockerignore_matcher((REPO / ".dockerignore").read_text(encoding="utf-8"))
    samples = {
        ".venv/": ".venv/bin/python",
        ".venv-lowest/": ".venv-lowest/bin/python",
        "__pycache__/": "evaluation/ml/__pycache__/scoring.cpython-311.pyc",
        "*.pyc": "core/views.pyc",
        "/var/": "var/db.sqlite3",
        "/staticfiles/": "staticfiles/staticfiles.json",
        ".pytest_cache/": ".pytest_cache/README.md",
        "test-output/": "test-output/screenshots/a.png",
        "*.egg-info/": "phrasebench.egg-info/PKG-INFO",
        "build/": "build/lib/core/__init__.py",
        "secret_key.txt": "secret_key.txt",
    }
    entries = [line.strip() for line in (REPO / ".gitignore").read_text(encoding="utf-8").splitlines()]
    entries = [entry for entry in entries if entry and not entry.startswith("#")]
    assert sorted(entries) == sorted(samples), "a new .gitignore entry: add a sample path here"
    samples |= {"(its own .gitignore)": ".hypothesis/examples/x", "(compose's variables)": ".env"}
    sent = [path for path in samples.values() if not ignored(path)]
    assert not sent, f"the build context would send {sent}"
    for kept in (
        "core/views.py",
        "constraints.txt",
        "Dockerfile",
        "static/js/app.js",
        "tests/image/replay.py",
    ):
        assert not ignored(kept), kept


@pytest.mark.parametrize(
    "pattern,path,matched",
    [
        # Docker's rules (docs.docker.com, "Build context", .dockerignore files), which the matcher follows.
        ("*.pyc", "a.pyc", True),
        ("*.pyc", "core/a.pyc", False),  # from the root only, unlike .gitignore
        ("**/*.pyc", "a.pyc", True),  # ** matches no folder too
        ("**/*.pyc", "core/ml/a.pyc", True),
        (".venv", ".venv-lowest/bin/python", False),
        (".venv", ".venv/bin/python", True),  # what a folder holds goes with it
        ("*/temp*", "somedir/temporary.txt", True),
        ("*/temp*", "somedir/sub/temporary.txt", False),
        ("temp?", "temp1", True),
        ("/var/", "var/db.sqlite3", True),
    ],
)
def test_the_dockerignore_matcher_follows_dockers_rules(pattern, path, matched):
    from tests.image.replay import dockerignore_matcher

    assert dockerignore_matcher(pattern)(path) is matched


def test_the_compose_file_builds_only_with_arguments_the_dockerfile_declares():
    import yaml

    from tests.image.replay import dockerfile_instructions, interpolate

    declared = {
        step.value.partition("=")[0]
        for step in dockerfile_instructions((REPO / "Dockerfile").read_text(encoding="utf-8"))
        if step.keyword == "ARG"
    }
    compose = interpolate(yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8")), {})
    for name, service in compose["services"].items():
        arguments = set((service.get("build") or {}).get("args", {}))
        assert arguments <= declared, (
            f"{name} builds with {sorted(arguments - declared)}, which no ARG declares"
        )
