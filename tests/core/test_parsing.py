"""Ids and numbers from outside are parsed strictly: a bad one is a 400 (or a 404 for a path) with a message,
never a server error. JSON bodies are refused when too deep, too large, or holding a number out of range."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django.db import connection
from django.urls import reverse
from rest_framework.test import APIClient

from core import parsing
from core.parsing import BIGINT_MAX, parse_id
from tests.core import test_permissions
from tests.core.test_permissions import _login

pytestmark = pytest.mark.django_db

world = test_permissions.world  # the permission table's fixture: its users, task, phrasings and runs

HUGE = "99999999999999999999"


@pytest.mark.parametrize(
    "text,expected",
    [
        ("1", 1),
        ("42", 42),
        (str(BIGINT_MAX), BIGINT_MAX),
        (str(BIGINT_MAX + 1), None),
        (HUGE, None),
        ("0", None),
        ("-1", None),
        ("²", None),  # str.isdigit() is true for it, and int() refuses it
        ("٣", None),  # int() reads it as 3
        ("1.5", None),
        ("1e3", None),
        (" 1", None),
        ("", None),
        ("9" * 5000, None),
        (None, None),
    ],
)
def test_an_id_is_ascii_digits_within_bigint(text, expected):
    assert parse_id(text) == expected


@pytest.mark.parametrize("variant", [HUGE, "²", "٣", "-5", "1.5", "0"])
def test_a_bad_variant_on_the_phrasing_page_is_a_400_saying_what_is_wrong(client, world, variant):
    response = client.get(reverse("phrasing_detail", args=[world.approved.id]), {"variant": variant})
    assert response.status_code == 400
    assert "&#x27;variant&#x27; must be an id: a whole number from 1 to" in response.content.decode()


def test_a_bad_page_of_the_results_grid_is_the_first_page(client, world):
    for page in (HUGE, "-3", "²", "x"):
        assert client.get(reverse("task_results", args=["b", "t"]), {"page": page}).status_code == 200


def test_a_bad_phrasing_id_in_the_preview_is_a_400(client, world):
    _login(client, "author")
    url = reverse("phrasing_preview", args=["b", "t"])
    response = client.post(url, {"template": "Is {number} even?", "instruction": HUGE})
    assert response.status_code == 400 and b"must be an id" in response.content
    assert (
        client.post(url, {"template": "Is {number} even?", "instruction": world.pending.id}).status_code
        == 200
    )


def test_bulk_review_with_a_superscript_digit_is_refused_with_a_message(client, world):
    _login(client, "curator")
    response = client.post(
        reverse("curation_bulk"),
        {"ids": ["²", HUGE], "decision": "rejected", "reason": "unclear"},
        follow=True,
    )
    assert response.status_code == 200
    assert "Tick the phrasings to review and choose a decision." in response.content.decode()


@pytest.mark.parametrize("query", [HUGE, "1e999", "²", "1.5", "-1"])
def test_an_api_filter_on_an_id_that_does_not_parse_is_a_400(query):
    response = APIClient().get("/api/results/", {"instruction": query})
    assert response.status_code == 400
    assert "Enter an id: a whole number from 1 to" in response.json()["instruction"][0]


@pytest.mark.parametrize("path", [f"/api/runs/{HUGE}/", "/api/runs/٣/", f"/api/instructions/{HUGE}/"])
def test_an_api_path_id_that_does_not_parse_is_a_404(world, path):
    assert APIClient().get(path).status_code == 404


@pytest.mark.parametrize(
    "body,message",
    [
        ("[" * 5000 + "]" * 5000, "nests deeper than 32 levels"),
        ("[" * 33 + "]" * 33, "nests deeper than 32 levels"),
        ('{"task": 1e999, "template": "Is {number} even?"}', "out of range"),
        ('{"task": NaN, "template": "Is {number} even?"}', "NaN is not a JSON number"),
        ('{"task": 1' + "0" * 5000 + "}", "JSON parse error"),
        ('{"task": 1, "template": "' + "x" * 3_000_000 + '"}', "over the limit of 2,621,440 bytes"),
        (b'{"template": "\xff"}', "JSON parse error"),
    ],
)
def test_a_json_body_out_of_bounds_is_a_400(world, body, message):
    api = APIClient()
    api.force_authenticate(world.pending.author)
    response = api.post("/api/instructions/", body, content_type="application/json")
    assert response.status_code == 400
    assert message in response.json()["detail"]


def test_a_json_body_within_bounds_still_works(world):
    api = APIClient()
    api.force_authenticate(world.pending.author)
    labels = {"task": world.task.id, "template": "Is {number} divisible by two?", "labels": ["yes", "no"]}
    response = api.post("/api/instructions/", labels, format="json")
    assert response.status_code == 201, response.json()
    nested = {"task": world.task.id, "template": "x", "extra": [[[[["fine"]]]]]}
    assert api.post("/api/instructions/check/", nested, format="json").status_code == 200


@pytest.mark.parametrize(
    "path,data",
    [
        ("/b/b/", {"q": "a\x00b"}),
        ("/curate/", {"benchmark": "\x00"}),
        ("/api/leaderboard/", {"benchmark": "\x00"}),
        ("/api/benchmarks/a%00b/", {}),
    ],
)
def test_a_nul_character_in_a_query_or_path_is_a_400_saying_so(client, world, path, data):
    _login(client, "admin")
    response = client.get(path, data)
    assert response.status_code == 400
    assert "holds a NUL character" in response.content.decode()


def test_a_nul_character_in_a_form_or_json_body_is_a_400(client, world):
    _login(client, "admin")
    form = urlencode({"ids": "1:1", "decision": "rejected", "reason": "a\x00b"})
    response = client.post(reverse("curation_bulk"), form, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400 and "holds a NUL character" in response.content.decode()
    # A multipart body is not read up front; the NUL is refused when the query meets it.
    response = client.post(
        "/api/models/", {"name": "n", "source": "/x", "family": "causal", "tuned_on": "a\x00"}
    )
    assert response.status_code == 400
    if connection.vendor == "postgresql":  # SQLite compares the NUL like any character: an unknown slug
        assert "holds a NUL character" in response.content.decode()
    api = APIClient()
    api.force_authenticate(world.pending.author)
    body = {"task": world.task.id, "template": "Is {number} even?", "labels": ["a\x00", "b"]}
    response = api.post("/api/instructions/", body, format="json")
    assert response.status_code == 400 and "NUL character" in response.json()["detail"]


@pytest.mark.parametrize(
    "value, slug",
    [("flan-t5_xl", True), ("Bad Name", False), ("abc\n", False), ("é", False), ("", False), (None, False)],
)
def test_a_slug_is_what_the_pages_addresses_take(value, slug):
    # "abc\n" passed the release importer's own `^...$` pattern: `$` matches before a final newline.
    assert parsing.is_slug(value) is slug
    assert (parsing.slug_problem(value, "the name") is None) is slug
