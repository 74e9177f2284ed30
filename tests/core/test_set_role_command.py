"""`manage.py set_role`, as the README tells an operator to run it: the role is given (exactly one, with the
staff flag Django admin asks for), and a wrong name or role is a one-line error that changes nothing."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from core import roles

pytestmark = pytest.mark.django_db


def role_of(username: str) -> tuple[set[str], bool]:
    user = get_user_model().objects.get(username=username)
    return roles.role_names(user), user.is_staff


def test_set_role_gives_exactly_one_role_and_admin_access_with_it():
    get_user_model().objects.create_user(username="dana")
    out = StringIO()
    call_command("set_role", "dana", "curator", stdout=out)
    assert out.getvalue().strip() == "dana is now curator."
    assert role_of("dana") == ({"curator"}, True)
    call_command("set_role", "dana", "author", stdout=StringIO())
    assert role_of("dana") == ({"author"}, False)


def test_an_unknown_user_or_role_is_a_clear_error_that_changes_nothing():
    get_user_model().objects.create_user(username="dana")
    call_command("set_role", "dana", "author", stdout=StringIO())
    with pytest.raises(CommandError, match="No user named 'nobody'"):
        call_command("set_role", "nobody", "curator")
    with pytest.raises(CommandError, match="invalid choice: 'overlord'"):
        call_command("set_role", "dana", "overlord")
    assert role_of("dana") == ({"author"}, False)
