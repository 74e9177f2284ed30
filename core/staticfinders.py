"""Serve plotly.js from the `plotly` Python package as static/vendor/plotly.min.js: the charting library
comes from PyPI with the rest of our dependencies (no CDN, no copy committed to the repository)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from django.contrib.staticfiles.finders import BaseFinder
from django.core.files.storage import FileSystemStorage

PUBLIC_NAME = "vendor/plotly.min.js"


def _package_data() -> Path:
    spec = importlib.util.find_spec("plotly")
    return Path(next(iter(spec.submodule_search_locations))) / "package_data"


class PlotlyFinder(BaseFinder):
    def check(self, **kwargs):
        return []

    def find(self, path, find_all=False, **kwargs):
        if path != PUBLIC_NAME:
            return [] if find_all else None
        found = str(_package_data() / "plotly.min.js")
        return [found] if find_all else found

    def list(self, ignore_patterns):
        storage = FileSystemStorage(location=str(_package_data()))
        storage.prefix = "vendor"
        yield "plotly.min.js", storage
