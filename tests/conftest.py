"""Shared fixtures: the users of STYLE.md (alice and bob author, carol curates, admin administers) and
the real benchmark data in ../shared/data, which tests skip without."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Group

from core.celery import app as celery_app

ONE_ID_FOR_MANY = pytest.StashKey[bool]()
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def pytest_addoption(parser):
    parser.addoption(
        "--database-tests-only",
        action="store_true",
        help="deselect the tests that use no database (bin/test's second database runs only those that do)",
    )


def xdist_worker() -> str | None:
    """This process's name under pytest-xdist (gw0, gw1, ...; bin/test runs two), or None in a plain run."""
    return os.environ.get("PYTEST_XDIST_WORKER")


def pytest_configure(config):
    # The tests' static files are the app folders', never a checkout's staticfiles/: `bin/run` collects there,
    # and its manifest made pages name hashed files, failing the tests that read plain names when the
    # README's two commands were run in order. An empty folder of this process's own (the processes the
    # tests start inherit it); tests that collect use one of their own too.
    static_root = tempfile.mkdtemp(prefix="phrasebench-test-static-")
    os.environ["STATIC_ROOT"] = static_root
    settings.STATIC_ROOT = Path(static_root)
    config.add_cleanup(lambda: shutil.rmtree(static_root, ignore_errors=True))
    # Each xdist process gets a Redis database of its own for the real-worker tests, which flush theirs:
    # TEST_REDIS_URL's number less the process's number plus one (15 -> 14, 13). Set before the test modules,
    # which read it on import, are collected.
    worker = xdist_worker()
    if worker:
        base, _, number = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15").rpartition("/")
        own = int(number) - int(worker.removeprefix("gw")) - 1
        if own < 0:
            raise pytest.UsageError(
                f"TEST_REDIS_URL's database {number} leaves none for xdist process {worker}"
            )
        os.environ["TEST_REDIS_URL"] = f"{base}/{own}"
        config.pluginmanager.register(ProcessesGroup(), "processes-group")


class ProcessesGroup:
    """Under xdist, the tests that start processes of their own (Celery workers, bin/run) are meant to run one at
    a time in one xdist process, beside the rest: two at once on two cores stretch their waits.
    tryfirst: xdist's own pytest_collection_modifyitems turns the xdist_group mark into the group; added after
    it (as this was, in the trylast hook below), the mark did nothing. And with pytest 9.2 and xdist 3.8 the
    group is lost anyway (pytest-dev/pytest-xdist#1386: xdist still edits the node id pytest 9.2 no longer
    reads), so today these tests do run in both processes; they pass so, and the RabbitMQ ones take a lock
    (tests/workers.py rabbitmq_alone). The mark takes effect again once xdist is fixed."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, items):
        for item in items:
            if "worker" in item.keywords or "processes" in item.keywords:
                item.add_marker(pytest.mark.xdist_group("processes"))


def uses_the_database(item) -> bool:
    """Whether a test reaches the test database: a django_db mark, or pytest-django's db fixtures among the
    fixtures it needs (directly or through others, such as `world`)."""
    fixtures = set(getattr(item, "fixturenames", ()))
    return bool(
        item.get_closest_marker("django_db") or fixtures & {"db", "transactional_db", "django_db_setup"}
    )


@pytest.hookimpl(trylast=True)  # after -m and --deselect have had their say
def pytest_collection_modifyitems(config, items):
    if config.getoption("--database-tests-only"):
        kept, left = [], []
        for item in items:
            (kept if uses_the_database(item) else left).append(item)
        config.hook.pytest_deselected(items=left)
        items[:] = kept
    # Tests marked postgres need PostgreSQL itself; on SQLite (bin/test's embedded pass) they skip, saying why.
    # So do the RabbitMQ worker tests: what they check (prefetch, heartbeats, a killed worker's job delivered
    # again) is the broker's and no database changes it; the database's side of the same behaviour runs on
    # SQLite through Redis, and the embedded default's own broker is the filesystem one (bin/run's tests).
    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        for item in items:
            if "postgres" in item.keywords:
                item.add_marker(pytest.mark.skip(reason="needs PostgreSQL (this run is on SQLite)"))
            elif item.get_closest_marker("rabbitmq"):
                item.add_marker(
                    pytest.mark.skip(
                        reason="the broker's behaviour, not the database's: RabbitMQ runs in the PostgreSQL pass"
                    )
                )
    if xdist_worker():
        # xdist's --dist loadgroup runs one test per test id: schemathesis gives every operation the same one,
        # so such tests must run outside xdist (bin/test runs them by themselves), or all but one would pass
        # unseen. The one that runs fails, saying so (an error in this hook would only crash the xdist process).
        seen, twice = set(), set()
        for item in items:
            (twice if item.nodeid in seen else seen).add(item.nodeid)
        for item in items:
            item.stash[ONE_ID_FOR_MANY] = item.nodeid in twice
    # Tests marked gpu need a CUDA device; everywhere else they are skipped, saying why.
    gpu = [item for item in items if "gpu" in item.keywords]
    if not gpu:
        return
    import torch

    if not torch.cuda.is_available():
        for item in gpu:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA device (none here)"))


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    # On SQLite the test database is a file beside DATABASE_URL's rather than Django's in-memory one, so real
    # worker processes (tests marked worker) open the same database, as bin/run's worker does.
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3"):
        # One file per xdist process, as pytest-django names PostgreSQL's test databases (test_postgres_gw0).
        name, worker = Path(database["NAME"]), xdist_worker()
        process = f"_{worker}" if worker else ""
        database.setdefault("TEST", {})["NAME"] = str(
            name.with_name(f"test_{name.stem}{process}{name.suffix}")
        )


def pytest_runtest_setup(item):
    if item.stash.get(ONE_ID_FOR_MANY, False):
        pytest.fail(
            "Under xdist only one of the tests with this id runs: run its file without -n (bin/test does)."
        )


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # PBKDF2 costs ~0.2 s per user; tests create many users and test nothing about hashing strength.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _eager_celery():
    # In-process tests run tasks inline; tests about workers start real worker processes instead. The setting
    # goes in under its CELERY_ name, as core/celery.py reads settings: Celery 5.5 (our floor) ignores the bare
    # name there.
    celery_app.conf.CELERY_TASK_ALWAYS_EAGER = True
    yield
    celery_app.conf.CELERY_TASK_ALWAYS_EAGER = False


@pytest.fixture
def rabbitmq_broker():
    """The test RabbitMQ's URL, its queues emptied and held by this test alone (tests/workers.py)."""
    from tests.workers import rabbitmq_alone, rabbitmq_url

    with rabbitmq_alone():
        yield rabbitmq_url()


@pytest.fixture(autouse=True)
def _releases_dir(settings, tmp_path):
    # Release exports and soft prompts made in a test go under its own directory, never the checkout's var/,
    # where tests in another xdist process would write the same names (ids start at 1 in each database).
    settings.RELEASES_DIR = tmp_path / "releases"
    settings.SOFTPROMPT_DIR = tmp_path / "softprompts"


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
