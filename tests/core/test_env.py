import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from core.env import env_bool, env_database, env_int, env_list, env_str

REPO = Path(__file__).resolve().parents[2]


def test_it_reads_booleans_strictly(monkeypatch):
    monkeypatch.setenv("FLAG", "yes")
    assert env_bool("FLAG", False) is True
    monkeypatch.setenv("FLAG", "off")
    assert env_bool("FLAG", True) is False
    monkeypatch.setenv("FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="FLAG='maybe' is not a boolean"):
        env_bool("FLAG", False)


def test_it_refuses_a_non_integer_and_a_value_below_the_minimum(monkeypatch):
    monkeypatch.setenv("N", "ten")
    with pytest.raises(ImproperlyConfigured, match="not an integer"):
        env_int("N", 1)
    monkeypatch.setenv("N", "-3")
    with pytest.raises(ImproperlyConfigured, match="below the minimum"):
        env_int("N", 1, minimum=0)


def test_it_reads_lists_and_secret_files(monkeypatch, tmp_path):
    monkeypatch.setenv("HOSTS", "a.example, b.example,,")
    assert env_list("HOSTS", []) == ["a.example", "b.example"]
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    monkeypatch.delenv("TOKEN", raising=False)
    monkeypatch.setenv("TOKEN_FILE", str(secret))
    assert env_str("TOKEN") == "s3cret"
    monkeypatch.setenv("TOKEN_FILE", str(tmp_path / "missing"))
    with pytest.raises(ImproperlyConfigured, match="TOKEN_FILE"):
        env_str("TOKEN")


def test_it_parses_database_urls_and_refuses_unknown_schemes(monkeypatch):
    monkeypatch.setenv("DB", "postgres://postgres@127.0.0.1:5432/app")
    config = env_database("DB", "sqlite:///x")
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert config["NAME"] == "app"
    monkeypatch.setenv("DB", "mysql://root@localhost/app")
    with pytest.raises(ImproperlyConfigured, match="scheme 'mysql'"):
        env_database("DB", "sqlite:///x")
    monkeypatch.setenv("DB", "not a url")
    with pytest.raises(ImproperlyConfigured, match="not a database URL"):
        env_database("DB", "sqlite:///x")


def _settings_in_fresh_process(env: dict[str, str]) -> str:
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='core.settings'; django.setup();"
        "from django.conf import settings as s;"
        "print(s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL, s.DEBUG)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True, check=False
    )
    return result.stdout.strip() + result.stderr


def test_embedded_defaults_need_no_server(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "VAR_DIR": str(tmp_path)}
    out = _settings_in_fresh_process(env)
    assert out == "django.db.backends.sqlite3 filesystem:// False"
    # The generated secret key is kept, private, outside the repository.
    key_file = tmp_path / "secret_key"
    assert key_file.stat().st_mode & 0o077 == 0
    assert len(key_file.read_text()) >= 32


def test_a_bad_setting_stops_start_up_with_its_name(tmp_path):
    out = _settings_in_fresh_process({"PATH": "/usr/bin:/bin", "VAR_DIR": str(tmp_path), "DEBUG": "perhaps"})
    assert "ImproperlyConfigured: DEBUG='perhaps' is not a boolean" in out
