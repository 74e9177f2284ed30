"""Login throttling (django-axes): too many failed logins for one username from one address lock that pair
out for the cool-off, even with the right password; other users and other addresses are unaffected."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"  # tests/conftest.py


def _login(client: Client, username: str, password: str, address: str = "203.0.113.7"):
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address)


def test_forty_wrong_passwords_lock_the_login_even_for_the_right_one(client, alice, bob, settings):
    assert settings.AXES_FAILURE_LIMIT == 10
    outcomes = [_login(client, "alice", f"guess {n}").status_code for n in range(40)]
    # Wrong passwords are the login form again (200) until the limit; from then on the lockout page (429).
    assert outcomes == [200] * 9 + [429] * 31
    response = _login(client, "alice", PASSWORD)
    assert response.status_code == 429
    assert response["Retry-After"] == "900"
    page = response.content.decode()
    assert "Too many failed logins" in page
    assert "After 10 failed attempts for <strong>alice</strong> from your address" in page
    assert "Try again in 15 minutes" in page
    assert "_auth_user_id" not in client.session
    # Bob, from the same address, and Alice from another address still log in.
    assert _login(Client(), "bob", PASSWORD).status_code == 302
    assert _login(Client(), "alice", PASSWORD, address="198.51.100.4").status_code == 302


def test_a_successful_login_forgets_earlier_failures(client, alice):
    for n in range(9):
        _login(client, "alice", f"guess {n}")
    assert _login(client, "alice", PASSWORD).status_code == 302
    client.logout()
    for n in range(9):
        assert _login(client, "alice", f"again {n}").status_code == 200
    assert _login(client, "alice", PASSWORD).status_code == 302


def test_behind_the_proxy_the_address_is_the_one_the_proxy_saw(client, alice, bob, settings):
    settings.BEHIND_TLS_PROXY = True
    # The client's own X-Forwarded-For entries are ignored; the proxy's (last) entry is the address.
    for n in range(10):
        client.post(
            reverse("login"),
            {"username": "alice", "password": f"guess {n}"},
            REMOTE_ADDR="10.0.0.1",
            HTTP_X_FORWARDED_FOR=f"192.0.2.{n}, 203.0.113.7",
        )
    same_address = Client(HTTP_X_FORWARDED_FOR="203.0.113.7")
    assert _login(same_address, "alice", PASSWORD, address="10.0.0.1").status_code == 429
    other_address = Client(HTTP_X_FORWARDED_FOR="203.0.113.8", REMOTE_ADDR="10.0.0.1")
    assert _login(other_address, "alice", PASSWORD, address="10.0.0.1").status_code == 302
