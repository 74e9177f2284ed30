"""How long a process takes to load the app, and its memory, against the same process importing what the app's
modules imported at the top until 2026-12-06 (the baseline, measured in the same run).

    .venv/bin/python bench/startup.py            # 5 runs of each, alternating
    .venv/bin/python bench/startup.py --smoke    # 1 run of each

What is timed is a fresh interpreter running `manage.py check` (settings, apps and with them the Celery tasks and
every service, the URLconf, admin): what every command, worker and web worker pays before doing anything. The
baseline imports torch (the model loader's) and scikit-learn's LogisticRegression (the estimator's, with pandas
and scipy.stats behind it) first, as loading the app did then; tests/core/test_startup.py keeps them out now.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchdb import SMOKE_HELP

REPO = Path(__file__).resolve().parents[1]
HEAVY = "import torch, sklearn.linear_model"
CHECK = "import sys; sys.argv = ['manage.py', 'check']; import runpy; runpy.run_path('manage.py', run_name='__main__')"


def once(code: str) -> tuple[float, float]:
    """Seconds and peak resident memory (MiB, as the process itself reports it) of a fresh interpreter."""
    peak = "import resource; print('peak', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", f"{code}; {peak}"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
        encoding="utf-8",
    )
    seconds = time.perf_counter() - started
    return seconds, int(result.stdout.split("peak")[-1]) / 1024  # ru_maxrss is in KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = parser.parse_args()
    runs = 1 if args.smoke else args.runs
    app, baseline = [], []
    for _ in range(runs):  # alternating, so a machine that slows down mid-run slows both alike
        app.append(once(CHECK))
        baseline.append(once(f"{HEAVY}; {CHECK}"))
    app_s, app_mb = (statistics.median(column) for column in zip(*app))
    base_s, base_mb = (statistics.median(column) for column in zip(*baseline))
    print(f"manage.py check, median of {runs}:")
    for label, seconds, mib in (
        ("the app as it is", app_s, app_mb),
        ("importing torch, sklearn", base_s, base_mb),
    ):
        print(f"  {label:<26} {seconds:6.2f} s  peak {mib:6.0f} MiB")
    print(f"ratio with / without: time {base_s / app_s:.1f}x, memory {base_mb / app_mb:.1f}x")


if __name__ == "__main__":
    main()
