"""Every text file the code reads or writes is UTF-8, named as such, and so is every child process's output
read as text: without `encoding`, Python uses the locale's encoding, which is ASCII under LC_ALL=C with UTF-8
mode off and cp1252 on Windows (PEP 597), so a file written on one machine would read differently, or not at
all, on another (run under LC_ALL=C PYTHONUTF8=0, a test failed decoding a worker's progress bar)."""

import ast
import subprocess

from tests.core.test_env import REPO

TEXT_IO = {"read_text", "write_text", "open", "fdopen"}


def _mode(call: ast.Call) -> str | None:
    """The mode an open-like call passes as a literal, positionally or by name; None when it passes none."""
    name = call.func.attr if isinstance(call.func, ast.Attribute) else call.func.id
    # open(path, mode) and os.fdopen(fd, mode) put it second; Path.open(mode) first.
    position = 1 if isinstance(call.func, ast.Name) or name == "fdopen" else 0
    given = [*call.args[position : position + 1], *(k.value for k in call.keywords if k.arg == "mode")]
    return next((g.value for g in given if isinstance(g, ast.Constant)), None)


def unnamed_encodings(source: str) -> list[int]:
    """Lines of calls that open a file in text mode, or read a process's output as text, without saying
    `encoding`."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or any(k.arg == "encoding" for k in node.keywords):
            continue
        if any(k.arg in ("text", "universal_newlines") for k in node.keywords):
            lines.append(node.lineno)  # subprocess.run(..., text=True) and the like
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in TEXT_IO:
            if func.attr in ("read_text", "write_text") or "b" not in (_mode(node) or ""):
                # Path.read_text/write_text, Path.open and os.fdopen; webbrowser.open and the like take no
                # file, and os.open gives a descriptor (no text until os.fdopen, which is checked).
                if not (
                    isinstance(func.value, ast.Name)
                    and func.value.id in {"webbrowser", "tarfile", "zipfile", "os"}
                    and func.attr != "fdopen"
                ):
                    lines.append(node.lineno)
        elif isinstance(func, ast.Name) and func.id == "open" and "b" not in (_mode(node) or ""):
            lines.append(node.lineno)
    return lines


def test_the_check_finds_what_it_looks_for():
    source = (
        "path.read_text()\npath.write_text(x)\nopen(p)\nopen(p, 'w')\nPath(p).open('a')\nos.fdopen(d, 'w')\n"
        "path.read_text(encoding='utf-8')\nopen(p, 'rb')\npath.open(mode='wb')\nread_text(path)\n"
        "webbrowser.open(url)\nsubprocess.run(c, text=True)\nsubprocess.run(c, text=True, encoding='utf-8')\n"
        "os.open(p, os.O_RDONLY)\n"
    )
    assert unnamed_encodings(source) == [1, 2, 3, 4, 5, 6, 12]


def test_every_text_file_is_opened_as_utf8():
    tracked = subprocess.run(
        ["git", "ls-files", "*.py"], cwd=REPO, capture_output=True, text=True, encoding="utf-8", check=True
    ).stdout.split()
    assert len(tracked) > 100
    found = {
        path: lines
        for path in tracked
        if (lines := unnamed_encodings((REPO / path).read_text(encoding="utf-8")))
    }
    assert found == {}, "name encoding='utf-8' (or open in binary mode) at these lines"
