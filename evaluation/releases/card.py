"""The release's dataset card (README.md), generated from the written Parquet files: the features, row
counts and sizes in its YAML front matter are read from the files themselves, never typed in, because the
Hugging Face `datasets` loader trusts the card (a declared column missing from the files comes back as nulls;
a wrong `num_examples` fails the load with NonMatchingSplitsSizesError)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from evaluation.releases import layout

# Arrow types as `datasets` names them in a card's `features` (Features._to_yaml_list).
DTYPES = {
    pa.string(): "string",
    pa.large_string(): "large_string",
    pa.bool_(): "bool",
    pa.int16(): "int16",
    pa.int32(): "int32",
    pa.int64(): "int64",
    pa.float32(): "float32",
    pa.float64(): "float64",
}
SIZE_CATEGORIES = [
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
    (100_000_000, "10M<n<100M"),
    (1_000_000_000, "100M<n<1B"),
]
STUDY = (
    "Sun, Shaib & Wallace, *Evaluating the Zero-shot Robustness of Instruction-tuned Language Models*, "
    "ICLR 2024"
)


def feature(field: pa.Field) -> dict:
    """One column as a card feature: {name, dtype} or {name, list: dtype}."""
    if pa.types.is_list(field.type):
        return {"name": field.name, "list": _dtype(field.type.value_type, field.name)}
    return {"name": field.name, "dtype": _dtype(field.type, field.name)}


def _dtype(type_: pa.DataType, name: str) -> str:
    for known, dtype in DTYPES.items():
        if type_.equals(known):
            return dtype
    raise ValueError(f"Column {name}: no card dtype for the Arrow type {type_} (add it to card.DTYPES).")


def size_category(rows: int) -> str:
    return next((label for bound, label in SIZE_CATEGORIES if rows < bound), "n>1B")


def config_files(root: Path, config: str) -> list[Path]:
    return sorted((root / config).glob(f"{layout.SPLIT}-*.parquet"))


def read_config(root: Path, config: str) -> dict:
    """What the card says of one config, read from its files: schema, rows, uncompressed and file bytes."""
    files = config_files(root, config)
    if not files:
        raise ValueError(f"No {layout.shard_glob(config)} files under {root}.")
    metas = [pq.ParquetFile(path).metadata for path in files]
    return {
        "schema": pq.read_schema(files[0]),
        "rows": sum(m.num_rows for m in metas),
        # `num_bytes` in datasets' sense: the data's size in memory, here the row groups' uncompressed size.
        "num_bytes": sum(m.row_group(i).total_byte_size for m in metas for i in range(m.num_row_groups)),
        "download_size": sum(path.stat().st_size for path in files),
        "files": len(files),
    }


def front_matter(root: Path, meta: dict) -> tuple[dict, dict]:
    """The YAML front matter, and what was read from each config's files."""
    read = {config.name: read_config(root, config.name) for config in layout.CONFIGS}
    license_fields = {"license": meta["license"]}
    if meta["license"] == "other":
        license_fields |= {"license_name": "phrasebench-release", "license_link": "README.md"}
    return {
        "pretty_name": f"PhraseBench release {meta['name']} {meta['version']}",
        **license_fields,
        "language": ["en"],
        "task_categories": ["multiple-choice"],
        "task_ids": ["multiple-choice-qa"],
        "size_categories": [size_category(read["predictions"]["rows"])],
        "tags": ["llm-evaluation", "prompt-sensitivity", "instruction-robustness", "phrasebench"],
        "configs": [
            {
                "config_name": config.name,
                "data_files": [{"split": layout.SPLIT, "path": layout.shard_glob(config.name)}],
                **({"default": True} if config is layout.PREDICTIONS else {}),
            }
            for config in layout.CONFIGS
        ],
        "dataset_info": [
            {
                "config_name": config.name,
                "features": [feature(f) for f in read[config.name]["schema"]],
                "splits": [
                    {
                        "name": layout.SPLIT,
                        "num_bytes": read[config.name]["num_bytes"],
                        "num_examples": read[config.name]["rows"],
                    }
                ],
                "download_size": read[config.name]["download_size"],
                "dataset_size": read[config.name]["num_bytes"],
            }
            for config in layout.CONFIGS
        ],
    }, read


def card_text(root: Path, meta: dict) -> str:
    """README.md for the release at `root`: YAML front matter from the files, then the prose."""
    yaml_part, read = front_matter(root, meta)
    header = yaml.safe_dump(yaml_part, sort_keys=False, allow_unicode=True, width=1000)
    rows = {name: r["rows"] for name, r in read.items()}
    lines = [
        "---",
        header.rstrip("\n"),
        "---",
        "",
        f"# PhraseBench release `{meta['name']}` {meta['version']}",
        "",
        "Instance-level results of instruction-tuned language models under many phrasings (instructions) of the "
        f"same tasks, exported from a PhraseBench site: the approved phrasings of the benchmarks "
        f"{', '.join(f'`{b}`' for b in meta['benchmarks'])}, their tasks and instances, the models scored on them, "
        "and every prediction (each option's log-likelihood, the predicted and gold option). PhraseBench turns "
        f"{STUDY} into a living benchmark: people write phrasings, curators approve them, and every approved "
        "phrasing is scored on every registered model.",
        "",
        f"Created {meta['created']} by PhraseBench {meta['app_version']}; data version `{meta['data_version']}` "
        "(a hash of the data files' hashes: two releases with the same data version hold the same rows).",
        "",
        "## Configs",
        "",
        "| Config | Rows | Files | What a row is |",
        "| --- | ---: | ---: | --- |",
    ]
    for config in layout.CONFIGS:
        lines.append(
            f"| `{config.name}` | {rows[config.name]:,} | {read[config.name]['files']} | {config.doc} |"
        )
    lines += [
        "",
        "```python",
        "from datasets import load_dataset",
        "",
        'predictions = load_dataset("path/to/this/release", "predictions", split="train")',
        'phrasings = load_dataset("path/to/this/release", "phrasings", split="train")',
        "```",
        "",
        "Every config must be named (or its `data_files` given): the configs have different columns, so "
        "loading the whole directory as one table fails. The files are plain Parquet "
        "(`pyarrow.parquet.read_table`, pandas, DuckDB, Polars read them as they are).",
        "",
        "Ids (`task_id`, `instance_id`, `revision_id`, `variant_id`) are this release's keys: join on them within "
        "it. They are the exporting database's ids; across releases and installs, a task is its `benchmark` and "
        "`task` slugs, an instance its task and `source_id`, a phrasing its `phrasing_key` and `content_hash`.",
        "",
    ]
    for config in layout.CONFIGS:
        lines += [f"### `{config.name}`", "", "| Column | Type | Meaning |", "| --- | --- | --- |"]
        types = {f.name: f.type for f in read[config.name]["schema"]}
        for column in config.columns:
            lines.append(f"| `{column.name}` | `{types.get(column.name, column.type)}` | {column.doc} |")
        lines.append("")
    lines += [
        "## How the figures are computed",
        "",
        "The leaderboard's figures are computed per model variant and task from `correct` over the cells with "
        "`in_eval_sample` true: A_p, the accuracy of phrasing p over its task's evaluation sample, then AvgP, Std, "
        "Min, Q10, Median, MaxP, Spread, CPS and Consistency over the task's approved phrasings; Observed and "
        "Unobserved AvgP split the phrasings by whether their `collection` is among the model's `tuned_on` "
        "(benchmark defaults are in neither). A benchmark figure is the plain mean over its top-level tasks "
        "(those with no `parent`). Soft-prompt and calibrated variants are scored on the held-out phrasings "
        "only (`heldout`). 95% intervals come from a seeded two-way bootstrap over phrasings and instances. "
        f"Every definition: [`{layout.FIGURES}`]({layout.FIGURES}) (the PhraseBench repository's "
        "`docs/figures.md`, generated from its figure registry).",
        "",
        "## What is left out, and why",
        "",
        "- Phrasings that are not approved (pending, sent back, rejected, retired): only approved phrasings are "
        "public on the site. For each approved phrasing only its approved text (current revision) is here, with "
        "the predictions on that text.",
        "- Phrasings known only from published results (no text): they have no predictions.",
        "- Published results imported from papers (imported model rows): they are per-phrasing accuracies from "
        "their source, which publishes them itself; there are no instance-level cells to release.",
        "- Authors' names: `author` is an anonymised id, stable across this site's releases.",
        "- Local model paths: a model loaded from a path on the site's disks has the source `(local path)`.",
        "- Review notes, runs, soft-prompt weights and training curves, embeddings: not data about the "
        "phrasings' effect on models, or not public.",
        "",
        "## Integrity",
        "",
        f"`{layout.CHECKSUMS}` lists the SHA-256 of every other file (`sha256sum -c {layout.CHECKSUMS}`); "
        f"`{layout.MANIFEST}` holds the release's name, version, counts, the hashes of the data files, and the "
        "site settings the figures depend on. `manage.py import_release DIR` checks both before it reads a row.",
        "",
        "## License",
        "",
        f"`{meta['license']}`."
        + (
            " The exporting site has not named a license: the phrasings are their authors' and the instances "
            "are under their source benchmarks' licenses (`benchmark_source` in `tasks`)."
            if meta["license"] == "other"
            else ""
        ),
        "",
        "## Citation",
        "",
        f"The method and the study it extends: {STUDY}.",
        "",
    ]
    return "\n".join(lines)
