"""Every URL of the permission table, with generated query strings (GET) and bodies (forms; JSON for the
API), anonymously and as an admin: whatever the parameters, the answer is never a server error.

The parameter names are the views' own plus random ones; the values are what breaks careless parsing:
unicode digits ("²" passes str.isdigit(), "٣" is read by int()), numbers past bigint, 1e999, NaN, NUL bytes
(PostgreSQL text cannot hold them), empty and very long texts. Each URL first gets a sweep (every known
parameter set to one bad value at once, one request per value), then generated examples. Derandomized, as
tests/core/test_api_fuzz.py is, so CI runs the same examples every time (drop derandomize locally to explore
further)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.core import test_permissions
from tests.core.test_permissions import CASES, _request

pytestmark = pytest.mark.django_db

world = test_permissions.world  # the permission table's fixture: its users, task, phrasings and runs

# What the views, forms, API filters and serializers read, and a few of Django admin's.
KNOWN = [
    "benchmark", "collection", "decision", "dir", "e", "file", "format", "ids", "instruction", "kind", "labels",
    "label_0", "label_1", "mine", "model", "name", "next", "o", "order", "p", "page", "part", "password",
    "q", "reason", "revision", "script", "set", "sort", "source", "status", "task", "template", "top_level",
    "username", "variant", "_to_field", "family", "email", "password1", "password2", "batch_size", "dtype",
]  # fmt: skip
NASTY = [
    "", "0", "-1", "1", "²", "٣", "1.5", "1e999", "-1e999", "NaN", "Infinity", "true", "null",
    "99999999999999999999", str(2**63), str(2**63 - 1), "-" + str(2**63 + 1), "9" * 5000,
    "\x00", "a\x00b", "%", "../", "<script>", "'", '"', "{number}", "{", "x" * 10_000, "approved", "csv", "json",
]  # fmt: skip
# The sweep: every known parameter set to one of these at once, before the generated examples.
SWEEP = ["a\x00b", "²", "99999999999999999999", "1e999", "9" * 5000]

nasty = st.sampled_from(NASTY)
texts = st.one_of(
    nasty,
    nasty,
    nasty,
    st.text(max_size=30),
    st.integers().map(str),
    st.floats().map(str),
    st.text(alphabet=st.characters(categories=["Nd", "No"]), min_size=1, max_size=25),
)
# Mostly the names the views read, so that each example sets several of them at once.
keys = st.one_of(st.sampled_from(KNOWN), st.sampled_from(KNOWN), st.sampled_from(KNOWN), st.text(max_size=12))
form_data = st.dictionaries(keys, st.one_of(texts, st.lists(texts, min_size=1, max_size=3)), max_size=12)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
json_data = st.dictionaries(keys, json_values, max_size=12)

API_PREFIXES = (
    "api",
    "benchmark-",
    "task-",
    "instruction-",
    "languagemodel-",
    "scoringrun-",
    "phrasingresult-",
)
LOGIN_FIRST = ("302:/accounts/login/", "302:/admin/login/")


def sweep(test):
    for n, value in enumerate(SWEEP):
        every_known = dict.fromkeys(KNOWN, value)
        test = example(forms=every_known, bodies=every_known, htmx=n % 2 == 1)(test)
    # JSON numbers past bigint and past float.
    return example(
        forms={}, bodies=dict.fromkeys(KNOWN, 2**70) | {"task": 1e308, "revision": -(2**64)}, htmx=False
    )(test)


@pytest.mark.parametrize(
    "name,args,method,data,expected", CASES, ids=[f"{c[2]}-{c[0]}-{i}" for i, c in enumerate(CASES)]
)
@settings(
    max_examples=3,
    deadline=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@sweep
@given(forms=form_data, bodies=json_data, htmx=st.booleans())
def test_no_parameters_give_a_server_error(world, name, args, method, data, expected, forms, bodies, htmx):
    generated = bodies if name.startswith(API_PREFIXES) and method != "get" else forms
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    admin = Client(raise_request_exception=False, **headers)
    admin.force_login(get_user_model().objects.get(username="root"))
    clients = [admin]
    # Anonymous requests to a page that sends them to log in first never reach the parameters.
    if not expected["anonymous"].startswith(LOGIN_FIRST):
        clients.append(Client(raise_request_exception=False, **headers))
    for client in clients:
        response = _request(client, world, name, args, method, {**data, **generated})
        assert response.status_code < 500, (
            f"{method.upper()} {name} {generated!r:.300}: {response.status_code}"
        )
