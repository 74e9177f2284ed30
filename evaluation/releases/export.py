"""Write a versioned dataset release (layout.py) of what an anonymous visitor may see: the approved phrasings
of the chosen benchmarks, their tasks and instances, the models, and every prediction of a model variant on
those phrasings.

Memory is bounded by the row group, not by the data: predictions are read a chunk at a time (a server-side
cursor on PostgreSQL), buffered until a row group is full, and written with pyarrow's ParquetWriter, which
holds one row group at a time. Per-instance gold options and per-task evaluation samples are held in memory
(one entry per instance), never the predictions.

The directory is written under a temporary name beside its final one and renamed when complete, so a failed
export leaves nothing that looks like a release.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import re
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.contrib.postgres.fields import ArrayField
from django.db import connection, transaction
from django.db.models import FloatField, IntegerField
from django.db.models.expressions import RawSQL
from django.utils.crypto import salted_hmac

from collection.access import instructions_visible_to
from collection.models import Benchmark, Instance, Task
from collection.selectors import approved_phrasings, task_eval_sample_ids
from core.errors import ApplicationError
from evaluation.access import models_visible_to
from evaluation.models import ModelVariant, Prediction, VariantKind, named_variants
from evaluation.releases import card, layout
from evaluation.split import is_heldout
from evaluation.stats import figure_registry

# Rows per Parquet row group: a few MB of predictions in memory, well under the 100-300 MB the Hugging Face
# viewer accepts per row group.
ROW_GROUP_ROWS = 100_000
# A new shard once one passes this size: push_to_hub's default largest shard.
SHARD_BYTES = 500 * 1024 * 1024
# Rows per database round trip.
FETCH_ROWS = 10_000
# Revision ids named in one query (SQLite allows 32,766 parameters a query).
REVISIONS_PER_QUERY = 1_000
# The variants a release holds: those with predictions. Imported variants carry a publication's accuracies,
# no instance-level cells, and are left out.
RELEASED_KINDS = (VariantKind.BASE, VariantKind.CALIBRATED, VariantKind.SOFT_PROMPT)
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
DEFAULT_LICENSE = "other"
LICENSE = re.compile(r"^[a-z0-9][a-z0-9.+-]{0,63}$")


class ExportFailed(ApplicationError):
    pass


@dataclass
class Export:
    path: Path
    manifest: dict
    counts: dict[str, int] = field(default_factory=dict)


class ShardWriter:
    """Rows of one config, buffered to ROW_GROUP_ROWS and written as Parquet row groups into shards of about
    SHARD_BYTES, named train-0000i-of-0000N.parquet once N is known (at close)."""

    def __init__(self, root: Path, config: layout.Config, *, row_group_rows: int, shard_bytes: int) -> None:
        self.directory = root / config.name
        self.directory.mkdir(parents=True)
        self.config = config
        self.schema = config.schema
        self.row_group_rows = row_group_rows
        self.shard_bytes = shard_bytes
        self.rows: list[tuple] = []
        self.count = 0
        self.parts: list[Path] = []
        self.writer: pq.ParquetWriter | None = None

    def add(self, row: tuple) -> None:
        self.rows.append(row)
        if len(self.rows) >= self.row_group_rows:
            self._flush()

    def _flush(self) -> None:
        if not self.rows:
            return
        columns = zip(*self.rows, strict=True)
        arrays = [pa.array(values, type=column.type) for values, column in zip(columns, self.config.columns)]
        table = pa.Table.from_arrays(arrays, schema=self.schema)
        self.count += len(self.rows)
        self.rows = []
        if self.writer is None:
            self._open()
        self.writer.write_table(table)
        if self.parts[-1].stat().st_size >= self.shard_bytes:
            self.writer.close()
            self.writer = None

    def _open(self) -> None:
        self.parts.append(self.directory / f".part-{len(self.parts)}.parquet")
        self.writer = pq.ParquetWriter(self.parts[-1], self.schema, compression="zstd")

    def close(self) -> list[Path]:
        self._flush()
        if self.writer is None and not self.parts:
            self._open()  # no rows: one empty shard, so the config and its schema are still there
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        shards = []
        for index, part in enumerate(self.parts):
            shard = self.directory / layout.shard_name(index, len(self.parts))
            part.rename(shard)
            shards.append(shard)
        return shards


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def author_id(user_id: int | None) -> str | None:
    """An author's anonymised id: stable across releases of one site (an HMAC of the user id under its secret
    key), meaningless elsewhere, and not reversible by trying user ids without that key."""
    if user_id is None:
        return None
    return "u-" + salted_hmac("phrasebench.release.author", str(user_id)).hexdigest()[:16]


def app_version() -> str:
    try:
        return importlib.metadata.version("phrasebench")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def release_export(
    *,
    out_dir: Path,
    benchmarks: list[str] | None = None,
    name: str = "phrasebench",
    version: str | None = None,
    license: str = DEFAULT_LICENSE,
    row_group_rows: int = ROW_GROUP_ROWS,
    shard_bytes: int = SHARD_BYTES,
) -> Export:
    """Write the release into out_dir/<name>-<version> and return where, with its manifest."""
    created = datetime.now(UTC).replace(microsecond=0)
    version = version or default_version(created)
    chosen = release_arguments_check(benchmarks=benchmarks, name=name, version=version, license=license)
    final = Path(out_dir) / f"{name}-{version}"
    if final.exists():
        raise ExportFailed(f"{final} exists already; choose another --name or version, or move it away.")
    final.parent.mkdir(parents=True, exist_ok=True)
    work = final.parent / f".{final.name}.partial-{uuid.uuid4().hex[:8]}"
    work.mkdir()
    try:
        with _snapshot():
            shards = _write_configs(work, chosen, row_group_rows=row_group_rows, shard_bytes=shard_bytes)
        meta = {
            "name": name,
            "version": version,
            "created": created.isoformat().replace("+00:00", "Z"),
            "app_version": app_version(),
            "license": license,
            "benchmarks": [b.slug for b in chosen],
        }
        manifest = _finish(work, shards, meta)
        work.rename(final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return Export(path=final, manifest=manifest, counts=manifest["counts"])


def default_version(when: datetime | None = None) -> str:
    """A release's version when none is given: the UTC time, 20250130T120000Z."""
    return (when or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")


def release_arguments_check(
    *, benchmarks: list[str] | None, name: str, version: str, license: str
) -> list[Benchmark]:
    """The benchmarks a release of these arguments holds, or ExportFailed saying which argument is wrong: the
    command, admin and the API refuse the same things with the same words, before anything is written."""
    for label, value in (("name", name), ("version", version)):
        if not NAME.match(value or ""):
            raise ExportFailed(
                f"The release {label} {value!r} must be letters, digits, '.', '_' or '-' "
                "(a directory and dataset name)."
            )
    if not LICENSE.match(license or ""):
        raise ExportFailed(
            f"The license {license!r} is not a Hugging Face license id (cc-by-4.0, mit, other, ...)."
        )
    return _benchmarks(benchmarks)


def _benchmarks(slugs: list[str] | None) -> list[Benchmark]:
    if not slugs:
        chosen = list(Benchmark.objects.order_by("slug"))
        if not chosen:
            raise ExportFailed("There are no benchmarks to release.")
        return chosen
    found = {b.slug: b for b in Benchmark.objects.filter(slug__in=slugs)}
    unknown = [slug for slug in slugs if slug not in found]
    if unknown:
        known = ", ".join(Benchmark.objects.order_by("slug").values_list("slug", flat=True)) or "none"
        raise ExportFailed(f"No benchmark {', '.join(unknown)}; known: {known}.")
    return [found[slug] for slug in dict.fromkeys(slugs)]


@contextlib.contextmanager
def _snapshot():
    """One consistent view of the data while it is read: a read-only repeatable-read transaction on
    PostgreSQL, so predictions landing during the export are all in it or all out. SQLite is read as it
    goes: a transaction there would take the write lock (IMMEDIATE) and stall the workers for the export."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        yield
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield


def _write_configs(root: Path, benchmarks: list[Benchmark], **sizes) -> dict[str, list[Path]]:
    tasks = list(
        Task.objects.filter(benchmark__in=benchmarks).select_related("benchmark", "parent").order_by("id")
    )
    anonymous = AnonymousUser()
    phrasings = approved_phrasings().filter(
        task__benchmark__in=benchmarks, id__in=instructions_visible_to(anonymous).values("id")
    )
    shards = {}

    writer = ShardWriter(root, layout.TASKS, **sizes)
    for task in tasks:
        writer.add(_task_row(task))
    shards["tasks"] = writer.close()

    gold: dict[int, int] = {}
    writer = ShardWriter(root, layout.INSTANCES, **sizes)
    rows = (
        Instance.objects.filter(task__benchmark__in=benchmarks)
        .order_by("id")
        .values_list("id", "task_id", "split", "source_id", "inputs", "options", "gold")
    )
    for instance_id, task_id, split, source_id, inputs, options, gold_index in rows.iterator(
        chunk_size=FETCH_ROWS
    ):
        gold[instance_id] = gold_index
        writer.add(
            (
                instance_id,
                task_id,
                split,
                source_id,
                json.dumps(inputs, ensure_ascii=False),
                options,
                gold_index,
            )
        )
    shards["instances"] = writer.close()

    revision_task: dict[int, int] = {}
    writer = ShardWriter(root, layout.PHRASINGS, **sizes)
    for instruction in phrasings.prefetch_related("tags").order_by("current_revision_id"):
        revision_task[instruction.current_revision_id] = instruction.task_id
        writer.add(_phrasing_row(instruction))
    shards["phrasings"] = writer.close()
    # The cells the figures count: each phrasing's task's evaluation sample (a parent task's includes its
    # subtasks' instances).
    phrased = set(revision_task.values())
    samples = {task.id: frozenset(task_eval_sample_ids(task)) for task in tasks if task.id in phrased}

    # Revision ids in sorted chunks, named in each query: each chunk is an index range per variant. With the
    # phrasings as a subquery instead, PostgreSQL scanned every cell of a variant that had none of them
    # (measured: 17 s to find that 100 models had no cells on a small benchmark).
    ids = sorted(revision_task)
    chunks = [ids[i : i + REVISIONS_PER_QUERY] for i in range(0, len(ids), REVISIONS_PER_QUERY)]
    variants = [
        variant
        for variant in named_variants(
            ModelVariant.objects.filter(model__in=models_visible_to(anonymous), kind__in=RELEASED_KINDS), ""
        )
        .prefetch_related("model__tuned_on")
        .order_by("id")
        if any(Prediction.objects.filter(variant=variant, revision_id__in=chunk).exists() for chunk in chunks)
    ]
    writer = ShardWriter(root, layout.MODELS, **sizes)
    for variant in variants:
        writer.add(_model_row(variant))
    shards["models"] = writer.close()

    writer = ShardWriter(root, layout.PREDICTIONS, **sizes)
    for variant in variants:
        for chunk in chunks:
            cells = _cells(Prediction.objects.filter(variant=variant, revision_id__in=chunk))
            for row in cells.iterator(chunk_size=FETCH_ROWS):
                revision_id, instance_id, predicted, correct, logliks, lengths, truncated = row
                in_sample = instance_id in samples[revision_task[revision_id]]
                writer.add(
                    (
                        variant.id,
                        revision_id,
                        instance_id,
                        predicted,
                        gold[instance_id],
                        correct,
                        logliks,
                        lengths,
                        truncated,
                        in_sample,
                    )
                )
    shards["predictions"] = writer.close()
    return shards


def _cells(predictions):
    """The predictions in release order as (revision, instance, predicted, correct, logliks, lengths,
    truncated) rows. On PostgreSQL the two JSON lists come as PostgreSQL arrays, which psycopg parses in C:
    decoding them as JSON in Python was two thirds of the export's time (profiled on a million cells). The
    numbers are parsed from the same decimal text either way, so they are the same floats."""
    predictions = predictions.order_by("revision_id", "instance_id")
    columns = ["revision_id", "instance_id", "predicted", "correct", "logliks", "lengths", "truncated"]
    if connection.vendor != "postgresql":
        return predictions.values_list(*columns)
    table = connection.ops.quote_name(Prediction._meta.db_table)
    predictions = predictions.annotate(
        logliks_array=RawSQL(
            f"translate({table}.logliks::text, '[]', '{{}}')::float8[]",
            [],
            output_field=ArrayField(FloatField()),
        ),
        lengths_array=RawSQL(
            f"translate({table}.lengths::text, '[]', '{{}}')::int[]",
            [],
            output_field=ArrayField(IntegerField()),
        ),
    )
    return predictions.values_list(
        *(f"{name}_array" if name in ("logliks", "lengths") else name for name in columns)
    )


def _task_row(task: Task) -> tuple:
    benchmark = task.benchmark
    return (
        task.id,
        benchmark.slug,
        benchmark.name,
        benchmark.description,
        benchmark.source,
        task.slug,
        task.name,
        task.description,
        task.parent.slug if task.parent_id else None,
        task.kind,
        task.answer_format,
        list(task.input_fields),
        list(task.required_fields),
        [str(label) for label in task.label_space],
        task.max_options,
        json.dumps(task.prompt_parts, ensure_ascii=False),
        task.eval_sample_size,
        task.eval_sample_seed,
        task.source,
        task.external_id,
    )


def _phrasing_row(instruction) -> tuple:
    revision = instruction.current_revision
    collection = instruction.collection
    return (
        revision.id,
        instruction.task_id,
        instruction.stable_key,
        revision.number,
        revision.content_hash,
        revision.template,
        None if revision.labels is None else [str(label) for label in revision.labels],
        revision.answers,
        instruction.prompt_format,
        collection.slug,
        collection.name,
        collection.kind,
        author_id(instruction.author_id),
        instruction.source,
        sorted(tag.slug for tag in instruction.tags.all()),
        instruction.status,
        is_heldout(instruction.stable_key),
    )


def _model_row(variant: ModelVariant) -> tuple:
    model = variant.model
    return (
        variant.id,
        model.name,
        variant.kind,
        str(variant),
        # A path on the workers' disks is not public (LanguageModel.public_source).
        model.public_source,
        model.revision,
        model.family,
        model.prompt_format,
        model.dtype,
        model.truncation,
        model.max_input_tokens,
        sorted(c.slug for c in model.tuned_on.all()),
        model.description,
    )


def _finish(root: Path, shards: dict[str, list[Path]], meta: dict) -> dict:
    """The card, the figures' definitions, release.json and SHA256SUMS, from the written data files."""
    configs = {}
    for config in layout.CONFIGS:
        configs[config.name] = [
            {
                "path": shard.relative_to(root).as_posix(),
                "rows": pq.ParquetFile(shard).metadata.num_rows,
                "bytes": shard.stat().st_size,
                "sha256": sha256_file(shard),
            }
            for shard in shards[config.name]
        ]
    counts = {name: sum(s["rows"] for s in files) for name, files in configs.items()}
    # Names the data, whatever the card says or when it was written: the hashes of the data files, in order.
    data_version = hashlib.sha256(
        "".join(f"{s['sha256']}  {s['path']}\n" for files in configs.values() for s in files).encode()
    ).hexdigest()
    meta = meta | {"data_version": data_version}
    (root / layout.FIGURES).write_text(figure_registry.markdown(), encoding="utf-8")
    (root / layout.CARD).write_text(card.card_text(root, meta), encoding="utf-8")
    manifest = {
        "format": layout.FORMAT,
        "format_version": layout.FORMAT_VERSION,
        **meta,
        "counts": counts,
        "configs": configs,
        "files": {name: sha256_file(root / name) for name in (layout.CARD, layout.FIGURES)},
        # What the figures depend on beyond the data: an import under other settings computes other figures.
        "settings": {
            "SPREAD_MIN_PHRASINGS": settings.SPREAD_MIN_PHRASINGS,
            "SOFTPROMPT_SPLIT_SEED": settings.SOFTPROMPT_SPLIT_SEED,
            "SOFTPROMPT_HELDOUT_FRACTION": settings.SOFTPROMPT_HELDOUT_FRACTION,
        },
        "libraries": {"pyarrow": pa.__version__},
    }
    (root / layout.MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.name != layout.CHECKSUMS)
    (root / layout.CHECKSUMS).write_text(
        "".join(f"{sha256_file(p)}  {p.relative_to(root).as_posix()}\n" for p in files), encoding="utf-8"
    )
    return manifest
