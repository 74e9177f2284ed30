"""Validated configs for loading and scoring. The Django side builds these from database rows and stores
`asdict(config)` with each run, so a result can always be traced to the exact settings that produced it."""

from __future__ import annotations

from dataclasses import dataclass

FAMILIES = ("seq2seq", "causal")
DTYPES = ("auto", "float32", "bfloat16", "float16")
PROMPT_FORMATS = ("none", "alpaca", "chat")


class ConfigError(ValueError):
    """A config that cannot work; the message names the field."""


@dataclass(frozen=True)
class ModelSpec:
    """Where a model comes from and how it reads a prompt."""

    source: str  # a Hugging Face hub id or a local directory
    family: str = "seq2seq"
    revision: str = ""  # hub revision (branch, tag or commit); ignored for local paths
    dtype: str = "auto"  # auto: bfloat16 on GPU, float32 on CPU
    prompt_format: str = "none"
    trust_remote_code: bool = False  # set only by an admin, never from user input
    soft_prompt: str = ""  # a trained soft prompt's directory (a PEFT prompt-tuning adapter), prepended to every input

    def __post_init__(self) -> None:
        if not self.source.strip():
            raise ConfigError("source: give a Hugging Face hub id or a local path.")
        if self.family not in FAMILIES:
            raise ConfigError(f"family: must be one of {', '.join(FAMILIES)}, not {self.family!r}.")
        if self.dtype not in DTYPES:
            raise ConfigError(f"dtype: must be one of {', '.join(DTYPES)}, not {self.dtype!r}.")
        if self.prompt_format not in PROMPT_FORMATS:
            raise ConfigError(f"prompt_format: must be one of {', '.join(PROMPT_FORMATS)}, not {self.prompt_format!r}.")


@dataclass(frozen=True)
class ScoreConfig:
    """How to batch. batch_size is the starting size; it halves on out-of-memory down to 1."""

    batch_size: int = 16
    device: str = "auto"  # auto: cuda when available, else cpu

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ConfigError("batch_size: must be at least 1.")
        if self.device != "auto" and not (self.device == "cpu" or self.device.startswith("cuda")):
            raise ConfigError(f"device: must be auto, cpu or cuda[:N], not {self.device!r}.")
