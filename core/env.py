"""Strict readers for settings taken from the environment.

Every reader raises SettingError (an ImproperlyConfigured) on a value it cannot parse, naming the variable, so a typo in a
deployment fails at start-up instead of silently falling back to a default. Secrets may also be given as
`NAME_FILE` pointing at a file (Docker and Kubernetes secrets), which wins over nothing but loses to `NAME`.
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path
from urllib.parse import quote

from django.core.exceptions import ImproperlyConfigured


class SettingError(ImproperlyConfigured):
    """A setting that cannot be used, said with its name and value: manage.py prints it as one line, not as
    a traceback through Django's start-up."""


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None) -> str | None:
    """The variable's value, else the content of the file named by NAME_FILE, else the default."""
    if name in os.environ:
        return os.environ[name]
    file_name = os.environ.get(f"{name}_FILE")
    if file_name:
        try:
            return Path(file_name).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SettingError(f"{name}_FILE={file_name!r} cannot be read: {exc.strerror}") from exc
    return default


def is_set(name: str) -> bool:
    """Whether the variable is given, itself or as NAME_FILE."""
    return name in os.environ or bool(os.environ.get(f"{name}_FILE"))


def renamed(name: str, *, old: str) -> str:
    """The variable to read a renamed setting from: `name`, unless only its deprecated `old` name is set, which
    is still read (core/checks.py warns about it). Pass the result to a reader: env_int(renamed(...), 300)."""
    return old if is_set(old) and not is_set(name) else name


def env_bool(name: str, default: bool) -> bool:
    raw = env_str(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SettingError(f"{name}={raw!r} is not a boolean; use one of 1/0, true/false, yes/no, on/off")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = env_str(name)
    if raw is None:
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise SettingError(f"{name}={raw!r} is not an integer") from None
    if minimum is not None and value < minimum:
        raise SettingError(f"{name}={value} is below the minimum of {minimum}")
    return value


def env_float(
    name: str, default: float, *, minimum: float | None = None, maximum: float | None = None
) -> float:
    raw = env_str(name)
    if raw is None:
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        raise SettingError(f"{name}={raw!r} is not a number") from None
    if minimum is not None and value < minimum:
        raise SettingError(f"{name}={value} is below the minimum of {minimum}")
    if maximum is not None and value > maximum:
        raise SettingError(f"{name}={value} is above the maximum of {maximum}")
    return value


DEVICES = "auto, cpu, cuda or cuda:N"


def device_name(raw: str) -> str | None:
    """A device as the settings and commands take it (auto, cpu, cuda or cuda:N), normalised; None if it is
    none of them."""
    value = raw.strip().lower()
    return value if re.fullmatch(r"auto|cpu|cuda(:\d+)?", value) else None


def device_arg(raw: str) -> str:
    """argparse's `type` for a command's --device: refused at once, before anything is queued or loaded."""
    value = device_name(raw)
    if value is None:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a device; use {DEVICES}")
    return value


def env_device(name: str, default: str) -> str:
    """Where a worker loads models: auto, cpu, cuda or cuda:N. Checked here, where the web process and every
    worker start, rather than by torch at the first job (torch is not imported to start the app)."""
    raw = env_str(name)
    if raw is None:
        return default
    value = device_name(raw)
    if value is None:
        raise SettingError(f"{name}={raw!r} is not a device; use {DEVICES}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    """A comma-separated list; empty items are dropped."""
    raw = env_str(name)
    if raw is None:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def sqlite_url(path: str | Path) -> str:
    """The database URL of a SQLite file at `path`. Quoted: a URL's path ends at "#" or "?" and reads "%xx"
    as a byte, so VAR_DIR="state #1" put the embedded database in a file named "state " beside it."""
    return f"sqlite:///{quote(str(path))}"


def env_database(name: str, default: str) -> dict:
    """A Django DATABASES entry parsed from a URL such as postgres://user@host:5432/db or sqlite:///path."""
    import dj_database_url

    url = env_str(name, default)
    if not url or "://" not in url:
        raise SettingError(f"{name}={url!r} is not a database URL such as postgres://user@host/db")
    scheme = url.split("://", 1)[0]
    if scheme not in {"postgres", "postgresql", "pgsql", "sqlite"}:
        raise SettingError(f"{name} uses scheme {scheme!r}; supported: postgres://, sqlite://")
    try:
        config = dj_database_url.parse(url, conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0))
    except ValueError as exc:
        raise SettingError(f"{name} cannot be parsed: {exc}") from exc
    if config["ENGINE"].endswith("sqlite3"):
        # Several processes (web and worker) write to the file. In WAL mode readers never block the writer;
        # writers wait up to `timeout` seconds for each other, and IMMEDIATE takes the write lock at BEGIN,
        # because a transaction that read first cannot wait when it upgrades: SQLite fails it at once.
        config.setdefault("OPTIONS", {}).update(
            timeout=30,
            transaction_mode="IMMEDIATE",
            init_command="PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        )
        config["CONN_MAX_AGE"] = 0
    return config
