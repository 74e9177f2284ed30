"""Static files with content-hashed names and precompressed copies (whitenoise), so browsers cache them for
good and plotly.js (4.8 MB) travels gzip- or brotli-compressed.

`collectstatic` (bin/run and the Dockerfile run it) writes `name.<hash>.ext` plus .gz and .br beside each file;
whitenoise serves a hashed name with `Cache-Control: max-age=315360000, public, immutable` and the smallest
encoding the browser accepts. Before collectstatic has run (the test suite, `runserver`), a name with no
hashed copy is served as it is, from the app folders (WHITENOISE_USE_FINDERS), rather than failing.
"""

from __future__ import annotations

from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticStorage(CompressedManifestStaticFilesStorage):
    manifest_strict = False  # a file missing from the manifest falls back below instead of raising

    def hashed_name(self, name, content=None, filename=None):
        try:
            return super().hashed_name(name, content, filename)
        except ValueError:
            # Not collected: no file to hash. Its plain name is served by the finders.
            return name
