"""Shared fixtures: the users of STYLE.md (alice and bob author, carol curates, admin administers) and
the real benchmark data in ../shared/data, which tests skip without."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth.models import Group

from core.celery import app as celery_app

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def pytest_collection_modifyitems(config, items):
    # Tests marked postgres need PostgreSQL itself; on SQLite (bin/test's embedded pass) they skip, saying why.
    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        for item in items:
            if "postgres" in item.keywords:
                item.add_marker(pytest.mark.skip(reason="needs PostgreSQL (this run is on SQLite)"))
    # Tests marked gpu need a CUDA device; everywhere else they are skipped, saying why.
    gpu = [item for item in items if "gpu" in item.keywords]
    if not gpu:
        return
    import torch

    if not torch.cuda.is_available():
        for item in gpu:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA device (none here)"))


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # PBKDF2 costs ~0.2 s per user; tests create many users and test nothing about hashing strength.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _eager_celery():
    # In-process tests run tasks inline; tests about workers start real worker processes instead.
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


@pytest.fixture(autouse=True)
def _releases_dir(settings, tmp_path):
    # Release exports asked for in a test write under its own directory, never the checkout's var/.
    settings.RELEASES_DIR = tmp_path / "releases"


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"the shared benchmark data is not at {SHARED_DATA} (clone ../shared beside the repo)")
    return SHARED_DATA


def _user(django_user_model, username: str, role: str | None):
    user = django_user_model.objects.create_user(username=username, password="correct horse battery")
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def alice(db, django_user_model):
    return _user(django_user_model, "alice", "author")


@pytest.fixture
def bob(db, django_user_model):
    return _user(django_user_model, "bob", "author")


@pytest.fixture
def carol(db, django_user_model):
    return _user(django_user_model, "carol", "curator")


@pytest.fixture
def admin_user(db, django_user_model):
    return _user(django_user_model, "admin", "admin")


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """Tiny T5, GPT-2 and Llama models with locally trained tokenizers, built once per test session."""
    from tests.evaluation.tiny import build

    root = tmp_path_factory.mktemp("tiny-models")
    return {arch: build(arch, root) for arch in ("t5", "gpt2", "llama")}


@pytest.fixture(autouse=True)
def _empty_cache():
    """Each test starts with an empty cache: cached pages and boards are keyed on data versions, which can
    repeat across tests whose databases are rolled back."""
    from django.core.cache import cache

    cache.clear()
