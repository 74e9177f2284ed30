"""A web process loads the embedding model as it starts (core/warmup.py), so the first live preview does
not pay for importing sentence-transformers and torch (measured on the busy 2-core dev machine: a cold first
preview took 4.4-4.9 s and the next 0.35-0.47 s; after the warm-up the first took 0.33 s)."""

from __future__ import annotations

import threading

from collection import similarity
from core.warmup import web_process_started


def test_a_started_web_process_warms_the_similarity_model_in_a_thread(monkeypatch):
    warmed = threading.Event()
    monkeypatch.setattr(similarity, "warm", warmed.set)
    web_process_started.send(sender=None)
    assert warmed.wait(timeout=10)


def test_a_failed_warm_up_leaves_the_error_to_the_first_request(monkeypatch, caplog):
    def broken() -> None:
        raise OSError("no model here")

    monkeypatch.setattr(similarity, "warm", broken)
    similarity.warm_in_background().join(timeout=10)
    assert "Could not load the similarity model" in caplog.text
