"""Validated configs for loading, scoring and soft-prompt training. The Django side builds these from
database rows and stores `asdict(config)` with each run, so a result can always be traced to the exact
settings that produced it."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from evaluation.ml.families import FAMILIES
from evaluation.ml.prompts import FORMATS

DTYPES = ("auto", "float32", "bfloat16", "float16")
INITS = ("phrasing", "vocab")
# align: the study's loss (CE + KL + rep). consistency: swarm distillation (Zhou et al. 2022, "Prompt
# Consistency for Zero-Shot Task Generalization"), agreement between phrasings with no labels.
OBJECTIVES = ("align", "consistency")
# What a prompt longer than the model's input length loses: its start (keep_end, as lm-evaluation-harness
# does, so the question, options and answer cue stay) or its end (cut_end, the study's tokenizer call).
TRUNCATIONS = ("keep_end", "cut_end")


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
    soft_prompt: str = (
        ""  # a trained soft prompt's directory (a PEFT prompt-tuning adapter), prepended to every input
    )
    # The most tokens a prompt may take, as the model reads it (special tokens and a soft prompt's virtual
    # tokens included); None: no limit. Longer prompts lose tokens on the side `truncation` names.
    max_input_tokens: int | None = None
    truncation: str = "keep_end"

    def __post_init__(self) -> None:
        if not self.source.strip():
            raise ConfigError("source: give a Hugging Face hub id or a local path.")
        if self.family not in FAMILIES:
            raise ConfigError(f"family: must be one of {', '.join(FAMILIES)}, not {self.family!r}.")
        if self.dtype not in DTYPES:
            raise ConfigError(f"dtype: must be one of {', '.join(DTYPES)}, not {self.dtype!r}.")
        if self.prompt_format not in FORMATS:
            raise ConfigError(
                f"prompt_format: must be one of {', '.join(FORMATS)}, not {self.prompt_format!r}."
            )
        if self.truncation not in TRUNCATIONS:
            raise ConfigError(
                f"truncation: must be one of {', '.join(TRUNCATIONS)}, not {self.truncation!r}."
            )
        if self.max_input_tokens is not None and self.max_input_tokens < 1:
            raise ConfigError("max_input_tokens: must be at least 1, or blank for no limit.")

    def for_loading(self) -> ModelSpec:
        """The spec with what only scoring reads (the input limit) at its defaults: what `load` depends on,
        so a warm model serves every limit."""
        return replace(self, max_input_tokens=None, truncation="keep_end")


# How items go into batches (scoring.py): a fixed number of rows, or as many as fit a budget of tokens.
BATCHINGS = ("auto", "count", "tokens")
# The rows per batch of count batching when no batch size is given: the CPU's default, as it always was.
DEFAULT_BATCH_SIZE = 16


@dataclass(frozen=True)
class ScoreConfig:
    """How to batch.

    batching: count (a fixed number of items per batch, `batch_size`, 16 if not given) or tokens (items until
    the batch's padded tokens reach `token_budget`; with no budget given, one is found per model, device and
    dtype and remembered: scoring.TokenBudget). auto: count on the CPU or when a batch size is given, tokens
    on a GPU. Either way the batch halves on out-of-memory, down to one item."""

    batch_size: int | None = None
    device: str = "auto"  # auto: cuda when available, else cpu
    batching: str = "auto"
    token_budget: int | None = None

    def __post_init__(self) -> None:
        if self.batch_size is not None and self.batch_size < 1:
            raise ConfigError("batch_size: must be at least 1, or blank for automatic.")
        if self.token_budget is not None and self.token_budget < 1:
            raise ConfigError("token_budget: must be at least 1, or blank to find one.")
        if self.batching not in BATCHINGS:
            raise ConfigError(f"batching: must be one of {', '.join(BATCHINGS)}, not {self.batching!r}.")
        if self.batching == "tokens" and self.batch_size is not None:
            raise ConfigError(
                "batch_size: token batching fills batches to a token budget; give no batch size."
            )
        if self.batching == "count" and self.token_budget is not None:
            raise ConfigError("token_budget: count batching takes a batch size, not a token budget.")
        if self.device != "auto" and not (self.device == "cpu" or self.device.startswith("cuda")):
            raise ConfigError(f"device: must be auto, cpu or cuda[:N], not {self.device!r}.")

    def batching_on(self, device_type: str) -> str:
        """count or tokens, on a device of this type (cpu, cuda)."""
        if self.batching != "auto":
            return self.batching
        if self.batch_size is not None or (device_type != "cuda" and self.token_budget is None):
            return "count"
        return "tokens"


@dataclass(frozen=True)
class AlignConfig:
    """How to train a soft prompt (see softprompt.py). Validated on creation; stored with the artifact and on
    the SoftPrompt row."""

    num_virtual_tokens: int = 20
    init: str = "phrasing"  # from a training phrasing's token embeddings, or sampled vocabulary embeddings
    lambda_kl: float = 1.0
    lambda_rep: float = 1.0
    learning_rate: float = 0.03
    steps: int = 100
    instances_per_batch: int = 4
    paraphrases: int = 3  # per instance, besides its anchor
    grad_accumulation: int = 1
    seed: int = 0
    objective: str = "align"  # consistency ignores the gold answers and the lambdas
    # Unsupervised early stopping (consistency only; softprompt.py): every `eval_every` steps, the agreement
    # between phrasings on `validation_instances` unlabeled training instances per task kept out of training;
    # training stops after `patience` checks without a better one and keeps the best prompt. 0: never stops early.
    patience: int = 0
    eval_every: int = 10
    validation_instances: int = 16

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"objective: must be one of {', '.join(OBJECTIVES)}, not {self.objective!r}.")
        if self.objective == "consistency" and self.paraphrases < 1:
            raise ConfigError("paraphrases: consistency compares phrasings, so it needs at least 1.")
        if not 1 <= self.num_virtual_tokens <= 512:
            raise ConfigError("num_virtual_tokens: must be between 1 and 512.")
        if self.init not in INITS:
            raise ConfigError(f"init: must be one of {', '.join(INITS)}, not {self.init!r}.")
        if self.lambda_kl < 0 or self.lambda_rep < 0:
            raise ConfigError("lambda_kl and lambda_rep: must be zero or more (zero turns the term off).")
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise ConfigError("learning_rate: must be a positive number.")
        for name in ("steps", "instances_per_batch", "grad_accumulation"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be at least 1.")
        if self.paraphrases < 0:
            raise ConfigError("paraphrases: must be zero or more.")
        if self.patience < 0:
            raise ConfigError("patience: must be zero (no early stopping) or more.")
        for name in ("eval_every", "validation_instances"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be at least 1.")
        if self.patience and self.objective != "consistency":
            # The labelled objectives have a supervised criterion to stop on; this one is for the unlabeled.
            raise ConfigError("patience: early stopping on agreement is for the consistency objective only.")

    @property
    def ablation(self) -> str:
        """The ablation this config is: CE only, +KL, +rep, or both; or the consistency objective."""
        if self.objective == "consistency":
            return "consistency"
        return "+".join(["ce"] + ["kl"] * (self.lambda_kl > 0) + ["rep"] * (self.lambda_rep > 0))
