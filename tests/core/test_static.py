"""Static files after collectstatic: hashed names cached for good, plotly.js sent compressed."""

from __future__ import annotations

import gzip

import pytest
from django.core.management import call_command
from django.templatetags.static import static
from django.test import Client, override_settings

pytestmark = pytest.mark.django_db


def test_collected_files_are_hashed_compressed_and_cached_for_good(tmp_path):
    with override_settings(STATIC_ROOT=tmp_path):
        call_command("collectstatic", "--noinput", verbosity=0)
        url = static("vendor/plotly.min.js")
        assert url != "/static/vendor/plotly.min.js" and url.endswith(".js")  # a content-hashed name
        response = Client().get(url, HTTP_ACCEPT_ENCODING="gzip")
        assert response.status_code == 200
        assert response["Content-Encoding"] == "gzip"
        assert "immutable" in response["Cache-Control"]
        body = b"".join(response.streaming_content)
        # Goal of issue 16: the chart bundle at most 1.5 MB on the wire.
        assert len(body) <= 1_500_000 and len(gzip.decompress(body)) > 4_000_000


def test_before_collectstatic_a_plain_name_is_served_from_the_app_folders(client):
    url = static("js/app.js")
    assert url == "/static/js/app.js"
    assert client.get(url).status_code == 200
