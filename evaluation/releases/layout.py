"""The release layout, in one place: its configs, their columns and Arrow types, and its file names. The export
writes these schemas, the import checks files against them, and the dataset card describes them from the files
(docs/releases.md is the prose).

A release is a directory in the Hugging Face datasets Parquet layout (what `push_to_hub` writes):

    README.md                              dataset card; YAML front matter with `configs` and `dataset_info`
    release.json                           name, version, created, app and data version, counts, file hashes
    SHA256SUMS                             `sha256sum -c` lines for every other file
    figures.md                             how the leaderboard figures are computed (the app's docs/figures.md)
    <config>/train-00000-of-0000N.parquet  one directory per config, one split (`train`: all rows)

Ids (`task_id`, `instance_id`, `revision_id`, `variant_id`) are the release's keys: join on them within a
release. They are the exporting database's ids, so they differ between installs; the stable identities are
the benchmark and task slugs, an instance's `source_id`, and a phrasing's `phrasing_key` and `content_hash`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

FORMAT = "phrasebench-release"
FORMAT_VERSION = 1
SPLIT = "train"
CARD = "README.md"
MANIFEST = "release.json"
CHECKSUMS = "SHA256SUMS"
FIGURES = "figures.md"


def shard_name(index: int, count: int) -> str:
    """A shard's file name, as push_to_hub names them: train-00000-of-00003.parquet."""
    return f"{SPLIT}-{index:05d}-of-{count:05d}.parquet"


def shard_glob(config: str) -> str:
    """The pattern the card's `data_files` gives for a config's shards."""
    return f"{config}/{SPLIT}-*.parquet"


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    doc: str
    nullable: bool = False


@dataclass(frozen=True)
class Config:
    name: str
    doc: str
    columns: tuple[Column, ...]

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, c.type, nullable=c.nullable) for c in self.columns])

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]


STRINGS = pa.list_(pa.string())

TASKS = Config(
    "tasks",
    "One row per task of the released benchmarks, with its benchmark.",
    (
        Column("task_id", pa.int64(), "The release's key for the task."),
        Column("benchmark", pa.string(), "The benchmark's slug."),
        Column("benchmark_name", pa.string(), "The benchmark's name."),
        Column("benchmark_description", pa.string(), "The benchmark's description."),
        Column("benchmark_source", pa.string(), "Where the benchmark's data comes from."),
        Column("task", pa.string(), "The task's slug, unique within its benchmark."),
        Column("name", pa.string(), "The task's name."),
        Column("description", pa.string(), "The task's description."),
        Column(
            "parent", pa.string(), "The slug of its parent task (MMLU subjects, BIG-bench subtasks).", True
        ),
        Column("kind", pa.string(), "multiple_choice, binary or classification."),
        Column("answer_format", pa.string(), "letter (the option's letter) or option_text (its text)."),
        Column("input_fields", STRINGS, "Instance fields a template may use."),
        Column("required_fields", STRINGS, "Fields every template must use."),
        Column("label_space", STRINGS, "What the model answers: letters A.. or the label words."),
        Column("max_options", pa.int32(), "The most options an instance has."),
        Column("prompt_parts", pa.string(), "The source benchmark's own prompt parts, a JSON object."),
        Column(
            "eval_sample_size",
            pa.int32(),
            "Phrasings are scored on this many evaluation instances (a seeded sample); null: all of them.",
            True,
        ),
        Column("eval_sample_seed", pa.int64(), "The seed of the evaluation sample."),
        Column("source", pa.string(), "Where the task comes from."),
        Column("external_id", pa.string(), "The task's name at its source."),
    ),
)

INSTANCES = Config(
    "instances",
    "One row per instance (question) of the released tasks, evaluation and training splits.",
    (
        Column("instance_id", pa.int64(), "The release's key for the instance."),
        Column("task_id", pa.int64(), "Its task (tasks.task_id)."),
        Column("split", pa.string(), "eval or train."),
        Column("source_id", pa.string(), "Its id at the source, unique within its task."),
        Column("inputs", pa.string(), "Field name -> text, a JSON object (fields differ between tasks)."),
        Column("options", STRINGS, "The answer options, in order."),
        Column("gold_index", pa.int32(), "Index of the correct option."),
    ),
)

PHRASINGS = Config(
    "phrasings",
    "One row per approved phrasing: the revision of its text that is approved and scored.",
    (
        Column("revision_id", pa.int64(), "The release's key for the phrasing's revision."),
        Column("task_id", pa.int64(), "Its task (tasks.task_id)."),
        Column(
            "phrasing_key",
            pa.string(),
            "The phrasing's stable key: a hash of benchmark, task and its first text, the same on every "
            "install (it decides the held-out split).",
        ),
        Column("revision_number", pa.int32(), "Which text of the phrasing this is (1 = as first written)."),
        Column(
            "content_hash",
            pa.string(),
            "SHA-256 of what the model sees and answers: template, labels, answers.",
        ),
        Column(
            "template", pa.string(), "The instruction template; {field} slots are filled from the instance."
        ),
        Column("labels", STRINGS, "The phrasing's own label words, when it has them.", True),
        Column("answers", pa.string(), "task, words or texts: what the model answers with."),
        Column("prompt_format", pa.string(), "Empty: any model; alpaca: Alpaca-format models only."),
        Column("collection", pa.string(), "Where the phrasing comes from (a collection's slug)."),
        Column("collection_name", pa.string(), "That collection's name."),
        Column(
            "collection_kind", pa.string(), "crowd, benchmark_default or tuning (an instruction-tuning set)."
        ),
        Column(
            "author",
            pa.string(),
            "Its author, anonymised: a stable id (HMAC of the user id under the exporting site's secret key); "
            "null for phrasings brought in from a source.",
            True,
        ),
        Column(
            "source",
            pa.string(),
            "The external source it was brought in from; empty when written on the site.",
        ),
        Column("tags", STRINGS, "What the phrasing varies, from the site's curated vocabulary (tag slugs)."),
        Column("status", pa.string(), "Its review status: always approved in a release."),
        Column(
            "heldout", pa.bool_(), "Held out from soft-prompt training under the exporting site's split seed."
        ),
    ),
)

MODELS = Config(
    "models",
    "One row per model variant with predictions: a model as registered, batch-calibrated, or with a soft prompt.",
    (
        Column("variant_id", pa.int64(), "The release's key for the variant."),
        Column("model", pa.string(), "The model's name."),
        Column("variant_kind", pa.string(), "base, calibrated or soft_prompt."),
        Column("variant", pa.string(), "The variant as the leaderboard names it."),
        Column("source", pa.string(), "The Hugging Face hub id it was loaded from, or (local path)."),
        Column("revision", pa.string(), "The hub branch, tag or commit; empty: the default."),
        Column("family", pa.string(), "seq2seq or causal (how options are scored)."),
        Column("prompt_format", pa.string(), "How a prompt was wrapped: none, alpaca or chat."),
        Column("dtype", pa.string(), "The weights' dtype setting when scored."),
        Column("truncation", pa.string(), "What was cut from a prompt over max_input_tokens."),
        Column("max_input_tokens", pa.int32(), "The longest input it takes, in tokens.", True),
        Column("tuned_on", STRINGS, "Collections it was tuned on: their phrasings are observed for it."),
        Column("description", pa.string(), "The model's description."),
    ),
)

PREDICTIONS = Config(
    "predictions",
    "One row per cell: a model variant's answer to one instance under one phrasing revision.",
    (
        Column("variant_id", pa.int64(), "The model variant (models.variant_id)."),
        Column("revision_id", pa.int64(), "The phrasing revision (phrasings.revision_id)."),
        Column("instance_id", pa.int64(), "The instance (instances.instance_id)."),
        Column("predicted_index", pa.int32(), "The option with the highest score."),
        Column("gold_index", pa.int32(), "The correct option (as instances.gold_index)."),
        Column("correct", pa.bool_(), "predicted_index == gold_index."),
        # float64, as stored: POSIX (figures.md) is computed from these, and float32 moved it in the 7th digit.
        Column(
            "option_logliks",
            pa.list_(pa.float64()),
            "Each option's score: the sum of its tokens' log-probabilities (a calibrated variant: its "
            "calibrated score), as stored.",
        ),
        Column("option_lengths", pa.list_(pa.int32()), "Each option's length in tokens."),
        Column("truncated", pa.bool_(), "The prompt was longer than the model's input and was cut."),
        Column(
            "in_eval_sample",
            pa.bool_(),
            "The instance is in the evaluation sample of the phrasing's task: the cells the figures count.",
        ),
    ),
)

# In the order the card lists them and the import reads them (each refers only to those before it).
CONFIGS: tuple[Config, ...] = (TASKS, INSTANCES, PHRASINGS, MODELS, PREDICTIONS)
BY_NAME = {config.name: config for config in CONFIGS}


def same_type(a: pa.DataType, b: pa.DataType) -> bool:
    """Arrow types equal up to the name of a list's item field (Parquet writers name it `element` or `item`)."""
    if pa.types.is_list(a) and pa.types.is_list(b):
        return same_type(a.value_type, b.value_type)
    return a.equals(b)


def schema_problems(config: Config, found: pa.Schema) -> list[str]:
    """How a file's schema differs from the config's (names, order and types; nullability and metadata are not
    compared), one line per column."""
    want = {c.name: c.type for c in config.columns}
    have = {field.name: field.type for field in found}
    problems = [f"missing column {name} ({want[name]})" for name in want if name not in have]
    problems += [f"unexpected column {name} ({have[name]})" for name in have if name not in want]
    problems += [
        f"column {name} is {have[name]}, expected {want[name]}"
        for name in want
        if name in have and not same_type(have[name], want[name])
    ]
    if not problems and list(have) != list(want):
        problems.append(f"columns in the order {', '.join(have)}; expected {', '.join(want)}")
    return problems
