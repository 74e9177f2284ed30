"""The tests' lock on RabbitMQ's shared queues (tests/workers.py) is every user's: `bin/test` run by a second
user on a machine where another had run it failed with a PermissionError on the lock file."""

from __future__ import annotations

import os
import stat
import tempfile

from tests.workers import rabbitmq_alone


def test_the_rabbitmq_lock_file_is_made_for_every_user_even_under_umask_077(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    before = os.umask(0o077)
    try:
        with rabbitmq_alone():
            pass
    finally:
        os.umask(before)
    mode = stat.S_IMODE((tmp_path / "phrasebench-tests-rabbitmq.lock").stat().st_mode)
    assert mode == 0o666, oct(mode)
