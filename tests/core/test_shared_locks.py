"""The tests' lock on RabbitMQ's shared queues (tests/workers.py) is every user's: `bin/test` run by a second
user on a machine where another had run it failed with a PermissionError on the lock file."""

from __future__ import annotations

import os
import stat
import tempfile

import pytest

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


def test_a_link_planted_in_its_place_is_refused_and_its_target_left_as_it_was(tmp_path, monkeypatch):
    """The lock file lives in a folder every user writes to: a symbolic link planted under its name would have
    had its target (another user's file) made world-writable."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    target = tmp_path / "someone-else.txt"
    target.write_text("private", encoding="utf-8")
    target.chmod(0o600)
    (tmp_path / "phrasebench-tests-rabbitmq.lock").symlink_to(target)
    with pytest.raises(OSError):  # ELOOP: O_NOFOLLOW
        with rabbitmq_alone():
            pass
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_an_existing_lock_file_is_opened_without_o_creat(tmp_path, monkeypatch):
    """On Debian and Ubuntu (fs.protected_regular=1), O_CREAT on another user's file in a sticky folder fails even
    when the file exists and may be read: the existing file is opened plainly."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    (tmp_path / "phrasebench-tests-rabbitmq.lock").touch()
    opened = []
    real_open = os.open

    def recording_open(path, flags, *args):
        opened.append(flags)
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", recording_open)
    with rabbitmq_alone():
        pass
    assert opened and not any(flags & os.O_CREAT for flags in opened)
