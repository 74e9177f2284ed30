"""Loading the app imports no ML library. Every process loads it: each `manage.py` command, the Celery worker,
gunicorn's workers, and the processes the tests and benches start. torch and scikit-learn (with pandas and
scipy.stats behind it), which the app's modules imported at the top, took about 4.5 s of a command's 6.6 s
start and 290 MB of its 440 MB (bench/startup.py). They, and the other ML libraries listed here, are imported
where a model is loaded, trained or fitted, and only in the process that does it (evaluation/ml/items.py holds
the plain data the app builds without torch)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.workers import REPO

HEAVY = (
    "torch",
    "transformers",
    "peft",
    "sentence_transformers",
    "sklearn",
    "pandas",
    "scipy.stats",
    "datasets",
)

# What every process does on start: the settings and apps (whose ready() imports the Celery tasks, and with them
# every service), the URLconf with every view and the API, admin's registrations, and Celery's app.
LOAD_THE_APP = f"""
import json, sys
import django
django.setup()
from django.contrib import admin
from django.urls import get_resolver
get_resolver().url_patterns
admin.autodiscover()
import core.celery
print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))
"""


def _last_line_in_fresh_process(code: str) -> str:
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "core.settings"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_loading_the_app_imports_no_ml_library():
    imported = json.loads(_last_line_in_fresh_process(LOAD_THE_APP))
    assert imported == [], f"loading the app imported {imported}; import them where they are used"


def test_the_worker_imports_torch_when_it_scores():
    # The other side of the same rule: the scoring path still finds the ML core where it needs it.
    code = (
        "import sys, django; django.setup(); from evaluation.runs import scoring; "
        "assert 'torch' not in sys.modules; scoring._models(); from evaluation.ml.scoring import score; "
        "print('torch' in sys.modules)"
    )
    assert _last_line_in_fresh_process(code) == "True"
