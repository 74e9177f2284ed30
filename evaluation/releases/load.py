"""Read a dataset release (layout.py) back into a database, empty or not, as rows that load nothing and are
never scored: the release's models come in as inactive models of their own, with their variants' predictions,
and their figures are computed here by the same aggregates as every other row.

Checked before a row is read: every file is listed in SHA256SUMS with its hash, and nothing else is there;
release.json is of a format this app reads and agrees with SHA256SUMS; every Parquet file has its config's
schema and the row count the manifest says. Then everything is written in one transaction: a bad row anywhere
(an unknown id, a value outside its choices, a cell twice) refuses the whole release and changes nothing.

Identity (docs/releases.md, "Import"):
- a benchmark is its slug, a task its benchmark and slug: made when missing; an existing task must agree on
  what its figures rest on (kind, answer format, label space, evaluation sample size and seed);
- an instance is its task and source id: made when missing; an existing one must have the same options, gold
  option and split;
- a phrasing is its task, its stable key (collection.models.phrasing_key, a hash of benchmark, task and first
  text, the same on every install) and its revision's content hash (template, label words, answers): a
  phrasing here with that key and a revision with that hash is the same phrasing, and its predictions go to
  that revision (its tags here stay as they are); otherwise the phrasing is made, approved, keeping the
  release's stable key (so its held-out side of the soft-prompt split is the same), revision number and tags;
- a model is made under its name (plus --model-suffix), inactive and ready, never merged into a model here: a
  name that exists already is refused, so scored-here and released predictions never mix. Its variants keep
  their kind (base, calibrated, soft prompt) so that their figures follow the same rules, and their provenance
  names the release.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from collection.importers.base import ImportFailed, ImportReport, slug_check
from collection.models import (
    AnswerFormat,
    Answers,
    Benchmark,
    Collection,
    CollectionKind,
    Instance,
    Instruction,
    InstructionRevision,
    PhrasingFormat,
    PhrasingTag,
    Split,
    Task,
    TaskKind,
    revision_hash,
)
from evaluation.leaderboards.aggregates import aggregates_refresh_many
from evaluation.models import (
    Dtype,
    LanguageModel,
    ModelFamily,
    ModelVariant,
    Prediction,
    PromptFormat,
    Truncation,
    VariantKind,
)
from evaluation.releases import layout
from evaluation.releases.export import RELEASED_KINDS, sha256_file

BATCH_ROWS = 10_000  # rows read from a file and written to the database at a time
HEX64 = re.compile(r"^[0-9a-f]{64}$")
PROVENANCE = "PhraseBench release"
MAX_DETAILS = 10


@dataclass
class Release:
    root: Path
    manifest: dict
    shards: dict[str, list[Path]]

    @property
    def label(self) -> str:
        return f"{PROVENANCE} {self.manifest['name']} {self.manifest['version']}"


# --- Checking the files ------------------------------------------------------------------------------------


def release_check(root: Path) -> Release:
    """The release at `root`, once its files, hashes, manifest and schemas are as they should be."""
    root = Path(root)
    if not root.is_dir():
        raise ImportFailed(
            root, f"not a directory: give the release's directory (the one with {layout.MANIFEST})"
        )
    listed = checksums(root)
    present = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} - {layout.CHECKSUMS}
    missing = sorted(set(listed) - present)
    if missing:
        raise ImportFailed(
            root, f"files listed in {layout.CHECKSUMS} are missing", details=missing[:MAX_DETAILS]
        )
    unlisted = sorted(present - set(listed))
    if unlisted:
        raise ImportFailed(
            root,
            f"files not listed in {layout.CHECKSUMS} (nothing vouches for them)",
            details=unlisted[:MAX_DETAILS],
        )
    for path, want in listed.items():
        have = sha256_file(root / path)
        if have != want:
            raise ImportFailed(
                root / path,
                f"its SHA-256 is {have}, {layout.CHECKSUMS} says {want}: the file was changed or damaged",
            )
    if layout.MANIFEST not in listed:
        raise ImportFailed(root / layout.MANIFEST, "missing: this is not a PhraseBench release")
    manifest = _manifest(root / layout.MANIFEST)
    shards = {config.name: _shards(root, manifest, config, listed) for config in layout.CONFIGS}
    return Release(root=root, manifest=manifest, shards=shards)


def checksums(root: Path) -> dict[str, str]:
    """The files SHA256SUMS lists, path -> SHA-256, in its order; ImportFailed for a missing or malformed
    list, or one naming a path outside the release."""
    path = root / layout.CHECKSUMS
    if not path.is_file():
        raise ImportFailed(path, "missing: a release lists every file's SHA-256 there")
    listed = {}
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ImportFailed(path, "not UTF-8 text") from None
    for number, line in enumerate(text.splitlines(), start=1):
        match = re.fullmatch(r"([0-9a-f]{64}) [ *](.+)", line)
        if match is None:
            raise ImportFailed(path, f"line {number} is not '<sha256>  <path>'")
        name = match[2]
        if name.startswith("/") or ".." in Path(name).parts or name in listed:
            raise ImportFailed(
                path, f"line {number}: {name!r} is not a relative path inside the release, or twice"
            )
        listed[name] = match[1]
    return listed


def _manifest(path: Path) -> dict:
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ImportFailed(path, f"not JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != layout.FORMAT:
        raise ImportFailed(path, f"not a {layout.FORMAT} manifest (its 'format' is not {layout.FORMAT!r})")
    if manifest.get("format_version") != layout.FORMAT_VERSION:
        raise ImportFailed(
            path,
            f"format version {manifest.get('format_version')!r}; this app reads version {layout.FORMAT_VERSION}",
        )
    for key in ("name", "version", "configs"):
        if key not in manifest:
            raise ImportFailed(path, f"has no {key!r}")
    return manifest


def _shards(root: Path, manifest: dict, config: layout.Config, listed: dict[str, str]) -> list[Path]:
    where = root / layout.MANIFEST
    entries = manifest["configs"].get(config.name) if isinstance(manifest["configs"], dict) else None
    if not entries or not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ImportFailed(where, f"names no files for the config {config.name}")
    on_disk = sorted(p.relative_to(root).as_posix() for p in (root / config.name).glob("*") if p.is_file())
    named = sorted(str(entry.get("path")) for entry in entries if isinstance(entry, dict))
    if on_disk != named:
        raise ImportFailed(
            root / config.name,
            f"holds {', '.join(on_disk) or 'no files'}; {layout.MANIFEST} names {', '.join(named) or 'none'}",
        )
    shards = []
    for entry in entries:
        path = root / entry["path"]
        if entry.get("sha256") != listed.get(entry["path"]):
            raise ImportFailed(path, f"{layout.MANIFEST} and {layout.CHECKSUMS} give it different hashes")
        try:
            parquet = pq.ParquetFile(path)
        except (pa.ArrowException, OSError) as exc:
            raise ImportFailed(path, f"not a readable Parquet file ({exc})") from None
        problems = layout.schema_problems(config, parquet.schema_arrow)
        if problems:
            raise ImportFailed(path, f"not the {config.name} schema", details=problems)
        if parquet.metadata.num_rows != entry.get("rows"):
            raise ImportFailed(
                path, f"{parquet.metadata.num_rows:,} rows; {layout.MANIFEST} says {entry.get('rows')}"
            )
        shards.append(path)
    return shards


def _rows(release: Release, config: layout.Config) -> Iterator[tuple[str, dict]]:
    """Each row of a config as a dict, with where it is (file and row number) for error messages."""
    for path in release.shards[config.name]:
        number = 0
        batches = pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS)
        while True:
            try:
                batch = next(batches, None)
            except (pa.ArrowException, OSError) as exc:
                raise ImportFailed(path, f"unreadable after row {number:,} ({exc})") from None
            if batch is None:
                break
            for column in config.columns:
                if not column.nullable and batch.column(column.name).null_count:
                    raise ImportFailed(path, f"column {column.name} has empty (null) values; it may not")
            columns = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
            for values in zip(*columns, strict=True):
                number += 1
                yield f"{path.relative_to(release.root)} row {number}", dict(zip(config.names, values))


# --- Importing ---------------------------------------------------------------------------------------------


def release_import(root: Path, *, model_suffix: str = "") -> ImportReport:
    """Check the release at `root`, then import it in one transaction (the module docstring's rules)."""
    if model_suffix:
        slug_check(root, model_suffix, "the model suffix")
    release = release_check(root)
    report = ImportReport()
    _compare_settings(release, report)
    try:
        with transaction.atomic():
            tasks = _import_tasks(release, report)
            instances = _import_instances(release, tasks, report)
            revisions = _import_phrasings(release, tasks, report)
            variants = _import_models(release, report, model_suffix)
            pairs = _import_predictions(release, tasks, instances, revisions, variants, report)
            aggregates_refresh_many(pairs)
    except DatabaseError as exc:
        # What the checks above do not foresee (a text too long for its column, say) is still a refusal.
        raise ImportFailed(root, f"the database refused a row ({str(exc).splitlines()[0]})") from None
    report.add("model variants with figures", len({variant for variant, _ in pairs}))
    return report


def _compare_settings(release: Release, report: ImportReport) -> None:
    for name, value in (release.manifest.get("settings") or {}).items():
        here = getattr(settings, name, None)
        if here != value:
            report.notes.append(
                f"the release was made with {name}={value}, this site has {here}: its figures are computed here "
                "under this site's setting, so they may differ from the release's"
            )


def _require(where: str, value, choices, what: str) -> None:
    if value not in choices:
        raise ImportFailed(where, f"{what} {value!r} is not one of {', '.join(map(str, choices))}")


def _import_tasks(release: Release, report: ImportReport) -> dict[int, Task]:
    rows = list(_rows(release, layout.TASKS))
    tasks: dict[int, Task] = {}
    by_slug: dict[tuple[str, str], Task] = {}
    for where, row in rows:
        slug_check(where, row["benchmark"] or "", "benchmark", max_length=100)
        slug_check(where, row["task"] or "", "task", max_length=200)
        _require(where, row["kind"], TaskKind.values, "kind")
        _require(where, row["answer_format"], AnswerFormat.values, "answer_format")
        if row["task_id"] in tasks:
            raise ImportFailed(where, f"task_id {row['task_id']} appears twice")
        benchmark = Benchmark.objects.filter(slug=row["benchmark"]).first()
        if benchmark is None:
            benchmark = Benchmark.objects.create(
                slug=row["benchmark"],
                name=row["benchmark_name"] or row["benchmark"],
                description=row["benchmark_description"] or "",
                source=row["benchmark_source"] or "",
            )
            report.add("benchmarks created")
        task = Task.objects.filter(benchmark=benchmark, slug=row["task"]).first()
        if task is None:
            task = Task.objects.create(
                benchmark=benchmark,
                slug=row["task"],
                name=row["name"] or row["task"],
                description=row["description"] or "",
                kind=row["kind"],
                answer_format=row["answer_format"],
                input_fields=row["input_fields"] or [],
                required_fields=row["required_fields"] or [],
                label_space=row["label_space"] or [],
                max_options=row["max_options"] or 0,
                prompt_parts=_json(where, row["prompt_parts"], dict, "prompt_parts"),
                eval_sample_size=row["eval_sample_size"],
                eval_sample_seed=row["eval_sample_seed"],
                source=row["source"] or "",
                external_id=row["external_id"] or "",
            )
            report.add("tasks created")
        else:
            _same_task(where, task, row)
            report.add("tasks matched")
        tasks[row["task_id"]] = task
        by_slug[(row["benchmark"], row["task"])] = task
    # Parents once every task exists (a parent may come after its subtasks).
    for where, row in rows:
        task = tasks[row["task_id"]]
        if row["parent"] and task.parent_id is None:
            parent = (
                by_slug.get((row["benchmark"], row["parent"]))
                or Task.objects.filter(benchmark=task.benchmark, slug=row["parent"]).first()
            )
            if parent is None:
                raise ImportFailed(
                    where, f"its parent task {row['parent']!r} is neither in the release nor here"
                )
            task.parent = parent
            task.save(update_fields=["parent"])
    return tasks


def _same_task(where: str, task: Task, row: dict) -> None:
    """An existing task takes the release's predictions only if its figures rest on the same things."""
    differences = [
        f"{name}: here {here!r}, in the release {theirs!r}"
        for name, here, theirs in (
            ("kind", task.kind, row["kind"]),
            ("answer_format", task.answer_format, row["answer_format"]),
            ("label_space", [str(x) for x in task.label_space], row["label_space"]),
            ("eval_sample_size", task.eval_sample_size, row["eval_sample_size"]),
            ("eval_sample_seed", task.eval_sample_seed, row["eval_sample_seed"]),
        )
        if here != theirs
    ]
    if differences:
        raise ImportFailed(where, f"the task {task} exists here and differs", details=differences)


def _json(where: str, text: str | None, kind: type, what: str):
    try:
        value = json.loads(text or ("{}" if kind is dict else "null"))
    except json.JSONDecodeError as exc:
        raise ImportFailed(where, f"{what} is not JSON ({exc})") from None
    if not isinstance(value, kind):
        raise ImportFailed(where, f"{what} is not a JSON {kind.__name__}")
    return value


@dataclass
class _Instance:
    id: int
    task_id: int
    gold: int
    options: int


def _import_instances(release: Release, tasks: dict[int, Task], report: ImportReport) -> dict[int, _Instance]:
    existing = {
        (task_id, source_id): (instance_id, options, gold, split)
        for instance_id, task_id, source_id, options, gold, split in Instance.objects.filter(
            task__in=list(tasks.values())
        ).values_list("id", "task_id", "source_id", "options", "gold", "split")
    }
    instances: dict[int, _Instance] = {}
    pending: list[tuple[int, Instance]] = []
    seen: set[int] = set()

    def flush() -> None:
        created = Instance.objects.bulk_create([instance for _, instance in pending])
        for release_id, instance in zip((rid for rid, _ in pending), created, strict=True):
            instances[release_id] = _Instance(
                instance.id, instance.task_id, instance.gold, len(instance.options)
            )
        report.add("instances created", len(pending))
        pending.clear()

    for where, row in _rows(release, layout.INSTANCES):
        task = tasks.get(row["task_id"])
        if task is None:
            raise ImportFailed(where, f"task_id {row['task_id']} is not in the release's tasks")
        _require(where, row["split"], Split.values, "split")
        options = row["options"] or []
        if not 0 <= (row["gold_index"] if row["gold_index"] is not None else -1) < len(options):
            raise ImportFailed(
                where, f"gold_index {row['gold_index']} is not one of its {len(options)} options"
            )
        if row["instance_id"] in seen:
            raise ImportFailed(where, f"instance_id {row['instance_id']} appears twice")
        seen.add(row["instance_id"])
        here = existing.get((task.id, row["source_id"]))
        if here is not None:
            instance_id, here_options, here_gold, here_split = here
            if instance_id is None:
                raise ImportFailed(where, f"the source_id {row['source_id']!r} appears twice in its task")
            if (here_options, here_gold, here_split) != (options, row["gold_index"], row["split"]):
                raise ImportFailed(
                    where,
                    f"the instance {task}#{row['source_id']} exists here with other options, gold option or "
                    "split; the release's predictions would not be about it",
                )
            instances[row["instance_id"]] = _Instance(instance_id, task.id, here_gold, len(here_options))
            report.add("instances matched")
            continue
        existing[(task.id, row["source_id"])] = (None, options, row["gold_index"], row["split"])
        pending.append(
            (
                row["instance_id"],
                Instance(
                    task=task,
                    split=row["split"],
                    source_id=row["source_id"],
                    inputs=_json(where, row["inputs"], dict, "inputs"),
                    options=options,
                    gold=row["gold_index"],
                ),
            )
        )
        if len(pending) >= BATCH_ROWS:
            flush()
    if pending:
        flush()
    return instances


def _import_phrasings(
    release: Release, tasks: dict[int, Task], report: ImportReport
) -> dict[int, tuple[int, int]]:
    """Release revision id -> (revision id here, task id here)."""
    here: dict[tuple[int, str, str], tuple[int, str, int]] = {}
    revisions_here = (
        InstructionRevision.objects.filter(instruction__task__in=list(tasks.values()))
        .order_by("id")
        .values_list(
            "id",
            "instruction__task_id",
            "instruction__stable_key",
            "content_hash",
            "instruction__status",
            "instruction__current_revision_id",
        )
    )
    for revision_id, task_id, key, content, status, current in revisions_here:
        # Two phrasings of a task with the same first text and text: the approved one's text is the match.
        if (task_id, key, content) not in here or (
            status == Instruction.Status.APPROVED and current == revision_id
        ):
            here[(task_id, key, content)] = (revision_id, status, current)
    collections = {c.slug: c for c in Collection.objects.all()}
    tags = {t.slug: t for t in PhrasingTag.objects.all()}
    revisions: dict[int, tuple[int, int]] = {}
    used: set[int] = set()
    waiting = 0
    for where, row in _rows(release, layout.PHRASINGS):
        task = tasks.get(row["task_id"])
        if task is None:
            raise ImportFailed(where, f"task_id {row['task_id']} is not in the release's tasks")
        if row["revision_id"] in revisions:
            raise ImportFailed(where, f"revision_id {row['revision_id']} appears twice")
        _require(where, row["answers"], Answers.values, "answers")
        _require(where, row["prompt_format"], PhrasingFormat.values, "prompt_format")
        _require(where, row["collection_kind"], CollectionKind.values, "collection_kind")
        if not HEX64.match(row["phrasing_key"] or ""):
            raise ImportFailed(where, "phrasing_key is not a SHA-256 hex digest")
        if (row["revision_number"] or 0) < 1:
            raise ImportFailed(where, f"revision_number {row['revision_number']} is not 1 or more")
        if row["answers"] == Answers.WORDS and row["labels"] is None:
            raise ImportFailed(where, "answers 'words' needs label words (labels is null)")
        content = revision_hash(row["template"] or "", row["labels"], row["answers"])
        if content != row["content_hash"]:
            raise ImportFailed(where, "content_hash is not the hash of its template, labels and answers")
        match = here.get((task.id, row["phrasing_key"], content))
        # Two phrasings of one task with the same first text and text (duplicates the site let through) are
        # two phrasings here too: the second is made, so that their predictions do not collide.
        if match is not None and match[0] not in used:
            used.add(match[0])
            revision_id, status, current = match
            if status != Instruction.Status.APPROVED or current != revision_id:
                waiting += 1
            revisions[row["revision_id"]] = (revision_id, task.id)
            report.add("phrasings matched")
            continue
        collection = collections.get(row["collection"])
        if collection is None:
            slug_check(where, row["collection"] or "", "collection", max_length=50)
            collection = Collection.objects.create(
                slug=row["collection"],
                name=row["collection_name"] or row["collection"],
                kind=row["collection_kind"],
            )
            collections[collection.slug] = collection
            report.add("collections created")
        instruction = Instruction.objects.create(
            task=task,
            collection=collection,
            source=release.label,
            external_id=str(row["revision_id"]),
            prompt_format=row["prompt_format"],
            stable_key=row["phrasing_key"],
            status=Instruction.Status.APPROVED,
        )
        revision = InstructionRevision.objects.create(
            instruction=instruction,
            number=row["revision_number"],
            template=row["template"],
            labels=row["labels"],
            answers=row["answers"],
        )
        instruction.current_revision = revision
        instruction.save(update_fields=["current_revision"])
        instruction.tags.set([_tag(where, slug, tags, report) for slug in row["tags"] or []])
        used.add(revision.id)
        revisions[row["revision_id"]] = (revision.id, task.id)
        report.add("phrasings created (approved)")
    if waiting:
        report.notes.append(
            f"{waiting} phrasing(s) matched ones here that are not approved, or whose approved text is another "
            "revision: their predictions are stored, and count in the figures once that text is approved"
        )
    return revisions


def _tag(where: str, slug: str, tags: dict, report: ImportReport) -> PhrasingTag:
    """A tag of the site's vocabulary; one it lacks is added (named by its slug) rather than dropped."""
    if slug not in tags:
        slug_check(where, slug, "tag", max_length=40)
        tags[slug] = PhrasingTag.objects.create(slug=slug, name=slug)
        report.add("phrasing tags created (named by their slugs)")
    return tags[slug]


def _import_models(release: Release, report: ImportReport, suffix: str) -> dict[int, ModelVariant]:
    rows = list(_rows(release, layout.MODELS))
    variants: dict[int, ModelVariant] = {}
    models: dict[str, LanguageModel] = {}
    collections = {c.slug: c for c in Collection.objects.all()}
    for where, row in rows:
        _require(where, row["variant_kind"], [str(kind) for kind in RELEASED_KINDS], "variant_kind")
        _require(where, row["family"], ModelFamily.values, "family")
        _require(where, row["prompt_format"], PromptFormat.values, "prompt_format")
        _require(where, row["dtype"], Dtype.values, "dtype")
        _require(where, row["truncation"], Truncation.values, "truncation")
        if row["variant_id"] in variants:
            raise ImportFailed(where, f"variant_id {row['variant_id']} appears twice")
        name = f"{row['model']}{suffix}"
        slug_check(where, name, "the model name", max_length=100)
        model = models.get(name)
        if model is None:
            if LanguageModel.objects.filter(name=name).exists():
                raise ImportFailed(
                    where,
                    f"a model named {name} exists here already; released predictions are never merged into a "
                    "model here: import with --model-suffix (e.g. --model-suffix=-release) to bring it in "
                    "beside it",
                )
            model = LanguageModel.objects.create(
                name=name,
                description=f"{row['description'] or row['model']} (From {release.label}: its predictions "
                "are the release's, never scored here.)",
                source=row["source"] or "(unknown)",
                revision=row["revision"] or "",
                family=row["family"],
                dtype=row["dtype"],
                prompt_format=row["prompt_format"],
                truncation=row["truncation"],
                max_input_tokens=row["max_input_tokens"],
                # Nothing to load here: it only carries the release's predictions.
                is_active=False,
                state=LanguageModel.State.READY,
            )
            tuned_on = []
            for slug in row["tuned_on"] or []:
                if slug not in collections:
                    slug_check(where, slug, "tuned_on's collection", max_length=50)
                    collections[slug] = Collection.objects.create(
                        slug=slug, name=slug, kind=CollectionKind.TUNING
                    )
                    report.add("collections created")
                tuned_on.append(collections[slug])
            model.tuned_on.set(tuned_on)
            models[name] = model
            report.add("models created (inactive)")
        if (
            row["variant_kind"] != VariantKind.SOFT_PROMPT
            and model.variants.filter(kind=row["variant_kind"]).exists()
        ):
            raise ImportFailed(where, f"the model {row['model']} has two {row['variant_kind']} variants")
        variants[row["variant_id"]] = ModelVariant.objects.create(
            model=model, kind=row["variant_kind"], provenance=f"{release.label}: {row['variant']}"[:500]
        )
        report.add("model variants created")
    return variants


def _import_predictions(
    release: Release,
    tasks: dict[int, Task],
    instances: dict[int, _Instance],
    revisions: dict[int, tuple[int, int]],
    variants: dict[int, ModelVariant],
    report: ImportReport,
) -> set[tuple[int, int]]:
    """Every cell, checked against the rows imported before it; returns the (variant, task) pairs to refresh."""
    parents = {task.id: task.parent_id for task in tasks.values()}
    pairs: set[tuple[int, int]] = set()
    batch: list[tuple] = []
    insert = _copy_predictions if connection.vendor == "postgresql" else _create_predictions
    count = 0
    for where, row in _rows(release, layout.PREDICTIONS):
        variant = variants.get(row["variant_id"])
        revision = revisions.get(row["revision_id"])
        instance = instances.get(row["instance_id"])
        if variant is None or revision is None or instance is None:
            which = "variant_id" if variant is None else "revision_id" if revision is None else "instance_id"
            raise ImportFailed(where, f"{which} {row[which]} is not in the release")
        revision_id, task_id = revision
        if instance.task_id != task_id and parents.get(instance.task_id) != task_id:
            raise ImportFailed(where, "the instance is not one of the phrasing's task (or its subtasks)")
        logliks, lengths = row["option_logliks"], row["option_lengths"]
        predicted = row["predicted_index"]
        if logliks is None or lengths is None or not len(logliks) == len(lengths) == instance.options:
            raise ImportFailed(
                where,
                f"option_logliks and option_lengths must have one entry per option ({instance.options})",
            )
        if not all(map(math.isfinite, logliks)):
            raise ImportFailed(where, "option_logliks holds a value that is not a finite number")
        if predicted is None or not 0 <= predicted < instance.options:
            raise ImportFailed(
                where, f"predicted_index {predicted} is not one of its {instance.options} options"
            )
        if row["gold_index"] != instance.gold or row["correct"] != (predicted == instance.gold):
            raise ImportFailed(where, "gold_index or correct disagrees with the instance's gold option")
        batch.append(
            (
                variant.id,
                revision_id,
                instance.id,
                logliks,
                lengths,
                predicted,
                row["correct"],
                bool(row["truncated"]),
            )
        )
        pairs.add((variant.id, task_id))
        if len(batch) >= BATCH_ROWS:
            count += _insert(insert, batch, where)
    if batch:
        count += _insert(insert, batch, release.root / layout.PREDICTIONS.name)
    report.add("predictions imported", count)
    return pairs


def _insert(insert, batch: list[tuple], where) -> int:
    try:
        insert(batch)
    except IntegrityError as exc:
        raise ImportFailed(where, f"a cell (variant, revision, instance) appears twice ({exc})") from None
    except DatabaseError as exc:
        raise ImportFailed(where, f"the database refused a batch of cells ({exc})") from None
    n = len(batch)
    batch.clear()
    return n


def _create_predictions(batch: list[tuple]) -> None:
    Prediction.objects.bulk_create(
        Prediction(
            variant_id=variant_id,
            revision_id=revision_id,
            instance_id=instance_id,
            logliks=logliks,
            lengths=lengths,
            predicted=predicted,
            correct=correct,
            truncated=truncated,
        )
        for variant_id, revision_id, instance_id, logliks, lengths, predicted, correct, truncated in batch
    )


def _copy_predictions(batch: list[tuple]) -> None:
    """PostgreSQL's COPY: an order of magnitude faster than INSERTs for millions of cells."""
    import psycopg

    now = timezone.now()
    columns = (
        "variant_id, revision_id, instance_id, logliks, lengths, predicted, correct, truncated, created_at"
    )
    try:
        with connection.cursor() as cursor:
            with cursor.copy(f"COPY {Prediction._meta.db_table} ({columns}) FROM STDIN") as copy:
                for (
                    variant_id,
                    revision_id,
                    instance_id,
                    logliks,
                    lengths,
                    predicted,
                    correct,
                    truncated,
                ) in batch:
                    copy.write_row(
                        (
                            variant_id,
                            revision_id,
                            instance_id,
                            json.dumps(logliks),
                            json.dumps(lengths),
                            predicted,
                            correct,
                            truncated,
                            now,
                        )
                    )
    except psycopg.errors.IntegrityError as exc:
        raise IntegrityError(str(exc).splitlines()[0]) from None
    except psycopg.Error as exc:
        raise DatabaseError(str(exc).splitlines()[0]) from None
