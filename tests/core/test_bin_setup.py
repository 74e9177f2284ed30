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


# A Python 3.11 whose venv cannot install pip, as on Debian and Ubuntu without python3.11-venv: `-m venv` makes
# .venv/bin/python and then fails; that python has no pip and no ensurepip.
PYTHON_311_WITHOUT_VENV = """#!/bin/sh
case "$*" in
  *version_info*) exit 0 ;;
  "-m venv .venv") mkdir -p .venv/bin && cp "$0" .venv/bin/python &&
                   echo "Error: Command '[...ensurepip...]' returned non-zero exit status 1." >&2; exit 1 ;;
  *) echo "No module named ${2:-?}" >&2; exit 1 ;;
esac
"""


def test_a_venv_that_cannot_be_made_is_said_and_left_nothing_behind(tmp_path):
    root, _ = _checkout(tmp_path)
    python = tmp_path / "python3.11"
    python.write_text(PYTHON_311_WITHOUT_VENV, encoding="utf-8")
    python.chmod(0o755)
    done = _setup(root, python)
    assert done.returncode == 1
    assert "could not make .venv" in done.stderr and "python3.11-venv" in done.stderr
    assert not (root / ".venv").exists()


def test_a_venv_left_without_pip_is_said_not_failed_at_a_missing_pip(tmp_path):
    """A .venv a failed venv left behind made every later bin/setup fail at ".venv/bin/pip: No such file"."""
    root, _ = _checkout(tmp_path)
    python = tmp_path / "python3.11"
    python.write_text(PYTHON_311_WITHOUT_VENV, encoding="utf-8")
    python.chmod(0o755)
    (root / ".venv" / "bin").mkdir(parents=True)
    shutil.copy(python, root / ".venv" / "bin" / "python")
    done = _setup(root, python)
    assert done.returncode == 1
    assert ".venv has no pip and cannot get one" in done.stderr and "No such file" not in done.stderr
