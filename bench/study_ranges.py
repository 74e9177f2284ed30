"""The demo study's tables over build seeds and databases: the ranges the README quotes.

    .venv/bin/python bench/study_ranges.py --seeds 0 1 2 --databases sqlite postgresql --jobs 2

Each build is what a newcomer's `bin/run` does, from nothing: a fresh VAR_DIR (and, for PostgreSQL, a fresh
database on DATABASE_URL's server), `migrate`, `load_demo --accounts --generated 64`, then
`reproduce_study --json` with DEMO_MODEL_SEED set to the build seed (the demo model is trained from scratch
under that seed: about 18 minutes a build on an idle 2-core machine, on one thread; --jobs runs builds side by
side). It prints every build's headline figures and each figure's minimum and maximum, and with --write stores
them in evaluation/demo_study_ranges.json, which reproduce_study compares its own figures with.

The figures are deterministic for a given build seed, CPU type and library versions (one CPU thread; the
held-out split hashes phrasings' stable keys, not database ids), so the ranges cover what the build seed and
the CPU type move: another CPU type (its own float kernels: AVX-512 or not) trains other weights. Each build
records its CPU; --merge widens the stored ranges with these builds instead of replacing them, so builds on
several machines add up (the file lists every CPU it was measured on).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RANGES = REPO / "evaluation" / "demo_study_ranges.json"


def cpu() -> str:
    """This machine's CPU model, and whether it has AVX-512 (which changes the float kernels torch runs)."""
    info = Path("/proc/cpuinfo").read_text(encoding="utf-8") if Path("/proc/cpuinfo").is_file() else ""
    model = next(
        (line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), ""
    )
    return f"{model or 'unknown CPU'} ({'AVX-512' if ' avx512f' in info else 'no AVX-512'})"


def build(seed: int, database: str, server: str, keep: Path) -> dict:
    var = Path(tempfile.mkdtemp(prefix=f"study-{database}-{seed}-"))
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    env |= {"VAR_DIR": str(var), "DEMO_MODEL_SEED": str(seed), "PYTHONUNBUFFERED": "1"}
    name = None
    if database == "postgresql":
        import psycopg

        name = f"study_{seed}_{uuid.uuid4().hex[:6]}"
        with psycopg.connect(server.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        env["DATABASE_URL"] = server.rsplit("/", 1)[0] + f"/{name}"
    out = keep / f"seed{seed}-{database}.json"
    log = keep / f"seed{seed}-{database}.log"
    started = time.monotonic()
    python = str(REPO / ".venv" / "bin" / "python")
    steps = [
        ["manage.py", "migrate", "--noinput"],
        ["manage.py", "load_demo", "--accounts", "--generated", "64"],
        ["manage.py", "reproduce_study", "--json", str(out)],
    ]
    with log.open("w", encoding="utf-8") as handle:
        for step in steps:
            subprocess.run(
                [python, *step], cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT, check=True
            )
    result = json.loads(out.read_text(encoding="utf-8"))
    result["seconds"] = round(time.monotonic() - started)
    result["cpu"] = cpu()
    out.write_text(json.dumps(result, indent=2, sort_keys=True), encoding="utf-8")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--databases", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"]
    )
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--keep", type=Path, default=REPO / "test-output" / "study-ranges")
    parser.add_argument("--collect", action="store_true", help="Only read the builds already in --keep.")
    parser.add_argument(
        "--write", action="store_true", help=f"Store the ranges in {RANGES.relative_to(REPO)}."
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="With --write: widen the stored ranges instead of replacing them.",
    )
    args = parser.parse_args()
    args.keep.mkdir(parents=True, exist_ok=True)
    server = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    if args.collect:
        results = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(args.keep.glob("seed*.json"))]
        for result in results:  # builds from before CPUs were recorded: collected where they were built
            result.setdefault("cpu", cpu())
    else:
        builds = [(seed, database) for seed in args.seeds for database in args.databases]
        with ThreadPoolExecutor(args.jobs) as pool:
            results = list(pool.map(lambda b: build(*b, server, args.keep), builds))
    if not results:
        sys.exit("no builds")
    names = sorted({name for r in results for name in r["figures"]})
    labels = [f"s{r['build_seed']} {r['database'][:6]}" for r in results]
    print(f"{'figure':<34}" + "".join(f"{label:>14}" for label in labels))
    ranges = {}
    for name in names:
        values = [r["figures"].get(name) for r in results]
        print(f"{name:<34}" + "".join(f"{'–' if v is None else v:>14}" for v in values))
        present = [v for v in values if v is not None]
        if len(present) == len(values):
            ranges[name] = [min(present), max(present)]
    print("seconds per build: " + ", ".join(str(r.get("seconds", "?")) for r in results))
    print("CPU: " + "; ".join(sorted({r["cpu"] for r in results})))
    if args.write:
        sys.path.insert(0, str(REPO))
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
        import django

        django.setup()
        from evaluation.demo_model import recipe

        stored = {
            "recipe": {k: v for k, v in recipe().items() if k != "seed"},
            "runs": len(results),
            "build_seeds": sorted({r["build_seed"] for r in results}),
            "databases": sorted({r["database"] for r in results}),
            "cpus": sorted({r["cpu"] for r in results}),
            "figures": ranges,
        }
        if args.merge and RANGES.is_file():
            old = json.loads(RANGES.read_text(encoding="utf-8"))
            if old["recipe"] != stored["recipe"]:
                sys.exit(
                    "The stored ranges were measured on another recipe: write them anew, without --merge."
                )
            for name, (low, high) in old["figures"].items():
                now = ranges.get(name, [low, high])
                ranges[name] = [min(low, now[0]), max(high, now[1])]
            stored["runs"] += old["runs"]
            for key in ("build_seeds", "databases", "cpus"):
                stored[key] = sorted(set(stored[key]) | set(old.get(key, [])))
        RANGES.write_text(
            json.dumps(
                stored,
                indent=2,
                sort_keys=True,
            )
            + "\n",
            encoding="utf-8",
        )
        print(f"wrote {RANGES.relative_to(REPO)}")


if __name__ == "__main__":
    main()
