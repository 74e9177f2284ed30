"""Every script in bench/ runs end to end at its smoke size (`--smoke`), so a bench that rots fails here, not on
the day someone needs its figures. No figure is read: speeds on a busy test machine mean nothing. What can fail
is the script itself (an exception, a changed import) and the checks a bench makes of the app as it runs, which
end it with status 1: ours against the naive reference (scoring), submissions lost or left unscored and
requests refused (load), requests failed (leaderboard).

Not here: gpu_check.py (its `--dry` run is tests/evaluation/test_gpu_check.py), and the three that need the
trained demo model, minutes to build (prompteval_real.py --prepare-demo, sqlite_pages.py, study_ranges.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.processes

REPO = Path(__file__).resolve().parents[1]
SECONDS = 600

# (script and arguments, a line its report prints last or near it, needs: "postgres" and/or "shared")
BENCHES = {
    "estimation": (["estimation.py", "--smoke"], "Mean absolute error in accuracy points", ()),
    "imports": (["imports.py", "--smoke"], "BIG-bench Lite import:", ("postgres", "shared")),
    "leaderboard": (["leaderboard.py", "--smoke"], "chart bundle:", ("postgres",)),
    "load": (["load.py", "--smoke"], "duplicate runs 0", ("postgres",)),
    "load --embedded": (["load.py", "--embedded"], "database is locked: server log 0, worker log 0", ()),
    "release": (["release.py", "--smoke"], "large / small:", ("postgres",)),
    "scoring": (["scoring.py", "--smoke"], "FLOP floor", ("shared",)),
    "softprompt t5": (["softprompt.py", "--smoke", "--arch", "t5"], "ratio align / plain", ()),
    "softprompt gpt2": (["softprompt.py", "--smoke", "--arch", "gpt2"], "ratio align / plain", ()),
    "startup": (["startup.py", "--smoke"], "ratio with / without", ()),
}


def bench_params():
    for name, (command, last, needs) in BENCHES.items():
        marks = [pytest.mark.postgres] if "postgres" in needs else []
        yield pytest.param(command, last, "shared" in needs, id=name, marks=marks)


@pytest.mark.parametrize("command, expected, needs_shared", list(bench_params()))
def test_every_bench_runs_at_its_smoke_size(command, expected, needs_shared, request):
    if needs_shared:
        request.getfixturevalue("shared_data")  # skips, saying where the data should be
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    if command[0] == "imports.py":
        # It makes test_<name> of DATABASE_URL's database: a name of its own, not this run's test database.
        server = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
        environment["DATABASE_URL"] = f"{server}/phrasebench_imports_smoke"
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / command[0]), *command[1:]],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=SECONDS,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"bench/{' '.join(command)} exited {result.returncode}:\n{output[-4000:]}"
    assert expected in result.stdout, (
        f"bench/{' '.join(command)} did not print {expected!r}:\n{output[-4000:]}"
    )
