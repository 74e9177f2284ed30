"""Load a model, its tokenizer and any soft prompt for scoring, keep the last one warm in a worker process,
and read off what the web process needs to know about a model without loading it (`model_facts`)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from evaluation.ml import prompts
from evaluation.ml.config import ConfigError, ModelSpec
from evaluation.ml.errors import ModelLoadError
from evaluation.ml.families import FAMILIES, Family

SOFT_PROMPT_WEIGHTS = "adapter_model.safetensors"  # the file PEFT writes a prompt-tuning adapter's weights to


@dataclass
class LoadedModel:
    spec: ModelSpec
    model: Any
    tokenizer: Any
    device: torch.device
    dtype: torch.dtype
    # (k, hidden) virtual-token embeddings prepended to the input (the encoder's, for seq2seq), or None.
    soft_prompt: torch.Tensor | None = None

    @property
    def family(self) -> Family:
        return FAMILIES[self.spec.family]

    @property
    def virtual_tokens(self) -> int:
        """How many soft-prompt tokens go in front of every input."""
        return 0 if self.soft_prompt is None else self.soft_prompt.shape[0]


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    if dtype == "auto":
        # bf16 keeps fp32's range on GPUs at half the memory; CPUs score in fp32 (bf16 matmuls are slow there).
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return getattr(torch, dtype)


def load(spec: ModelSpec, device: str = "auto") -> LoadedModel:
    # Lazy import: transformers takes seconds to import and the web process never needs it.
    import transformers

    target = resolve_device(device)
    dtype = resolve_dtype(spec.dtype, target)
    local = Path(spec.source).expanduser()
    looks_local = spec.source.startswith(("/", ".", "~")) or local.exists()
    if looks_local and not local.is_dir():
        raise ModelLoadError(f"No model directory at {spec.source}.")
    source = str(local) if looks_local else spec.source
    kwargs: dict[str, Any] = {"trust_remote_code": spec.trust_remote_code}
    if spec.revision and not looks_local:
        kwargs["revision"] = spec.revision
    model_class = getattr(transformers, FAMILIES[spec.family].auto_class)
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(source, **kwargs)
        model = _load_weights(model_class, source, dtype, kwargs)
    except (OSError, ValueError, KeyError, ImportError) as exc:
        # transformers reports a missing hub id, missing files or a wrong architecture this way; and a
        # tokenizer that needs a library not installed (sentencepiece, protobuf) with an ImportError, which is
        # also what transformers 5.0 raises for a directory without a model (5.24: a ValueError).
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"Could not load {spec.family} model {spec.source!r}: {first_line}") from exc
    model.to(target)
    model.eval()
    if tokenizer.pad_token_id is None:
        # Padding positions are always masked out, so any id will do; GPT-2-style tokenizers have no pad token.
        tokenizer.pad_token = tokenizer.eos_token if tokenizer.eos_token is not None else tokenizer.unk_token
    soft_prompt = None
    if spec.soft_prompt:
        soft_prompt = load_soft_prompt(spec.soft_prompt, model).to(device=target, dtype=model.dtype)
    return LoadedModel(
        spec=spec, model=model, tokenizer=tokenizer, device=target, dtype=dtype, soft_prompt=soft_prompt
    )


def _load_weights(model_class, source: str, dtype: torch.dtype, kwargs: dict):
    """The model, its attention through PyTorch's scaled_dot_product_attention (SDPA: fused, memory-efficient
    kernels on a GPU), or transformers' own attention for an architecture that has no SDPA path."""
    try:
        return model_class.from_pretrained(source, dtype=dtype, attn_implementation="sdpa", **kwargs)
    except ValueError as exc:
        if "sdpa" not in str(exc).lower() and "scaled_dot_product" not in str(exc).lower():
            raise
    return model_class.from_pretrained(source, dtype=dtype, **kwargs)


def load_soft_prompt(directory: str | Path, model) -> torch.Tensor:
    """The (k, hidden) virtual-token embeddings of a saved soft prompt, checked against the model."""
    from safetensors.torch import load_file

    path = Path(directory) / SOFT_PROMPT_WEIGHTS
    if not path.is_file():
        raise ModelLoadError(f"No soft prompt at {path}.")
    tensors = load_file(str(path))
    weights = tensors.get("prompt_embeddings")
    if weights is None:
        raise ModelLoadError(f"{path} holds no prompt_embeddings; is it a PEFT prompt-tuning adapter?")
    hidden = model.get_input_embeddings().weight.shape[1]
    if weights.dim() != 2 or weights.shape[1] != hidden:
        raise ModelLoadError(
            f"The soft prompt's width {tuple(weights.shape)} does not fit the model (hidden size {hidden})."
        )
    return weights


# Tokenizers that do not know their model's input length report a huge placeholder (transformers' 1e30).
MAX_SANE_LENGTH = 10_000_000


@dataclass(frozen=True)
class ModelFacts:
    """What the web process needs to know about a model, read once by the model check where the model loads:
    its chat template's text, the special tokens that template reads, and how many tokens it takes in."""

    chat_template: str  # empty: the tokenizer has none
    special_tokens: dict[str, str]  # bos_token, eos_token, ...: the tokenizer's special_tokens_map
    max_input_tokens: int | None  # None: neither the tokenizer nor the config says


def model_facts(loaded: LoadedModel) -> ModelFacts:
    """The facts of a loaded model. For a chat-format model, also proves that its chat template frames a
    prompt in the sandbox the web process renders it in (prompts.chat_wrap_from_template), so a model whose
    template cannot does not become ready."""
    template = prompts.chat_template_of(loaded.tokenizer)
    tokens = prompts.special_tokens_of(loaded.tokenizer)
    if prompts.FORMATS[loaded.spec.prompt_format].uses_chat_template:
        if not template:
            raise ConfigError(
                "prompt_format: the tokenizer has no chat template; choose the 'none' or 'alpaca' prompt format."
            )
        try:
            prompts.chat_wrap_from_template(template, tokens)
        except prompts.ChatTemplateError as exc:
            raise ConfigError(f"prompt_format: the chat template cannot frame a prompt ({exc}).") from exc
    return ModelFacts(
        chat_template=template, special_tokens=tokens, max_input_tokens=_max_input_tokens(loaded)
    )


def _max_input_tokens(loaded: LoadedModel) -> int | None:
    length = getattr(loaded.tokenizer, "model_max_length", None)
    if isinstance(length, int) and 0 < length <= MAX_SANE_LENGTH:
        return length
    config = getattr(loaded.model, "config", None)
    for name in ("n_positions", "max_position_embeddings"):
        length = getattr(config, name, None)
        if isinstance(length, int) and 0 < length <= MAX_SANE_LENGTH:
            return length
    return None  # e.g. T5: relative positions, no fixed limit


class ModelCache:
    """Keeps the most recently used model loaded, so a GPU worker does not reload it for every run."""

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._loaded: LoadedModel | None = None

    def get(self, spec: ModelSpec, device: str = "auto") -> LoadedModel:
        # The input limit changes how a prompt is encoded, not what is loaded: the model check (before the
        # limit is known) and the runs after it share one load.
        key = (spec.for_loading(), device)
        if self._key != key or self._loaded is None:
            self.clear()
            self._loaded = load(spec, device)
            self._key = key
        return self._loaded if self._loaded.spec == spec else replace(self._loaded, spec=spec)

    def clear(self) -> None:
        self._key, self._loaded = None, None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
