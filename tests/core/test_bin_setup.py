"""bin/setup (which bin/run and bin/test start with) on a machine whose Python is not 3.11, the one
pyproject.toml allows: it must say so and stop before making anything, rather than have pip download torch (a
CUDA build of several GB on Linux) and only then refuse the project. The Python here is a stand-in that
answers bin/setup's version questions as a 3.12 would."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PYTHON_312 = """#!/bin/sh
case "$2" in
  *version_info*) exit 1 ;;
  *python_version*) echo 3.12.3 ;;
  *) echo "not a real Python: $*" >&2; exit 3 ;;
esac
"""


def _checkout(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "checkout"
    (root / "bin").mkdir(parents=True)
    shutil.copy(REPO / "bin" / "setup", root / "bin" / "setup")
    for name in ("pyproject.toml", "constraints.txt"):
        shutil.copy(REPO / name, root / name)
    python = tmp_path / "python3.12"
    python.write_text(PYTHON_312, encoding="utf-8")
    python.chmod(0o755)
    return root, python


def _setup(root: Path, python: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(root / "bin" / "setup")],
        env={"PATH": "/usr/bin:/bin", "PYTHON": str(python)},
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
    )


def test_another_python_is_refused_before_anything_is_made(tmp_path):
    root, python = _checkout(tmp_path)
    done = _setup(root, python)
    assert done.returncode == 1
    assert "needs Python 3.11" in done.stderr and "is 3.12.3" in done.stderr and "PYTHON=" in done.stderr
    assert not (root / ".venv").exists()


def test_a_venv_made_with_another_python_is_named(tmp_path):
    root, python = _checkout(tmp_path)
    (root / ".venv" / "bin").mkdir(parents=True)
    (root / ".venv" / "bin" / "python").symlink_to(python)
    done = _setup(root, python)
    assert done.returncode == 1
    assert ".venv holds Python 3.12.3" in done.stderr and "remove .venv" in done.stderr
