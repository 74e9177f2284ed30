from __future__ import annotations

import pytest

from tests.evaluation.tiny import build


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """Tiny T5, GPT-2 and Llama models with locally trained tokenizers, built once per test session."""
    root = tmp_path_factory.mktemp("tiny-models")
    return {arch: build(arch, root) for arch in ("t5", "gpt2", "llama")}
