"""PromptEval-ready matrices: per (model variant, task), the dense correctness matrix Y (phrasings x instances)
and the phrasing covariates PromptEval fits on, written as one `.npz` per pair plus an index
(`manage.py export_matrices`; the format is documented in docs/prompteval.md).

Rows are the task's approved phrasings, each at its current revision (the equivalence set the leaderboard
figures are computed on), in revision-id order; columns are the task's evaluation sample
(collection.selectors.task_eval_sample_ids), in instance-id order. PromptEval needs Y dense, so a phrasing
the variant has scored on only part of the sample (an adaptive run's, or a run in progress) is left out and
listed in the file (`dropped_revision_ids`, with the cells it had); phrasings with no cell at all for the
variant (written for another prompt format, or outside a soft prompt's held-out set) are counted
(`unscored`). Old revisions of edited phrasings and retired phrasings are not rows: their predictions are
kept, but they are not in the equivalence set any more. Imported (published) variants have per-phrasing
accuracies only, no cells, so they have no matrix.

Covariates, both computed from the phrasing's template text:
- X_emb: the sentence embeddings the app already stores for its near-duplicate check (collection/similarity.py:
  all-MiniLM-L6-v2 by default, unit length, of the whitespace-normalised template), computed and stored here
  for any revision that lacks one. PromptEval itself embeds with a DPR question encoder and keeps 25 PCA
  components; the raw vectors are written, so that any reduction is the reader's choice.
- X_disc: PromptEval's discrete format features (its get_features.py): counts of upper-case, lower-case and
  title-case words, line breaks, each of its special strings, spaces, and each framing word (a word with a
  colon that starts upper-case or with a digit, such as "Answer:"; the vocabulary is the task's approved
  phrasings' framing words, so every variant of a task has the same columns).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from collection.models import Benchmark, Instance, Task
from collection.selectors import approved_phrasings
from evaluation.leaderboards.adaptive_estimates import read_matrix
from evaluation.models import LanguageModel, ModelVariant, PhrasingResult, ResultSource, VariantKind

FORMAT = "phrasebench-prompteval-matrices"
FORMAT_VERSION = 1
INDEX_JSON = "index.json"
INDEX_PARQUET = "index.parquet"
# The index's columns (TaskMatrix.index_row) and their types: the Parquet index has this schema, rows or none.
INDEX_COLUMNS = {
    "benchmark": "string",
    "task": "string",
    "variant": "string",
    "variant_id": "int64",
    "variant_kind": "string",
    "model": "string",
    "path": "string",
    "phrasings": "int64",
    "instances": "int64",
    "mean_accuracy": "float64",
    "dropped_partial": "int64",
    "unscored": "int64",
    "embedding_model": "string",
    "emb_dim": "int64",
    "disc_dim": "int64",
}

# PromptEval's special_character_count strings, in its order, with a column name each. Its "" counts
# len(text) + 1 (str.count of the empty string), so that column is the template's length plus one.
SPECIAL_STRINGS = {
    ":": "colons",
    "-": "hyphens",
    "||": "double_bars",
    "<sep>": "sep_tokens",
    "::": "double_colons",
    "": "length_plus_one",
    "(": "open_parens",
    ")": "close_parens",
    '"': "double_quotes",
    "?": "question_marks",
}
BASE_FEATURES = (
    "upper_words",
    "lower_words",
    "title_words",
    "line_breaks",
    *SPECIAL_STRINGS.values(),
    "spaces",
)


# ---- discrete format features (no database) ---------------------------------------------------------------------


def framing_vocabulary(templates: Sequence[str]) -> list[str]:
    """PromptEval's framing words over these templates: whitespace-separated words containing a colon that
    start with an upper-case letter or a digit ("Answer:", "Q:", "1:"), sorted."""
    return sorted(
        {w for text in templates for w in text.split() if ":" in w and (w[0].isupper() or w[0].isnumeric())}
    )


def discrete_features(templates: Sequence[str], vocabulary: Sequence[str] | None = None):
    """(len(templates), d) float32 counts and their d names: PromptEval's vectorize_string on each template,
    with the framing words of `vocabulary` (default: those of the templates themselves)."""
    vocabulary = framing_vocabulary(templates) if vocabulary is None else list(vocabulary)
    names = [*BASE_FEATURES, *(f"framing:{word}" for word in vocabulary)]
    rows = []
    for text in templates:
        words = text.split()
        rows.append(
            [
                sum(w.isupper() for w in words),
                sum(w.islower() for w in words),
                sum(w.istitle() for w in words),
                text.count("\n"),
                *(text.count(s) for s in SPECIAL_STRINGS),
                text.count(" "),
                *(sum(w == framing for w in words) for framing in vocabulary),
            ]
        )
    return np.asarray(rows, dtype=np.float32).reshape(len(templates), len(names)), names


# ---- one matrix -------------------------------------------------------------------------------------------------


@dataclass
class TaskMatrix:
    """One (variant, task): the arrays written to its .npz under these names (docs/prompteval.md)."""

    benchmark: str
    task: str
    variant: str  # file-name key: the model's name, plus "--<kind>-<id>" for a variant other than the base
    variant_id: int
    variant_kind: str
    model: str
    Y: np.ndarray  # (P, I) int8, 1 = correct
    revision_ids: np.ndarray  # (P,) int64
    phrasing_keys: np.ndarray  # (P,) str: collection.models.phrasing_key, the same on every database
    templates: np.ndarray  # (P,) str
    collections: np.ndarray  # (P,) str: each phrasing's collection slug
    observed: np.ndarray  # (P,) bool: in a collection the model was tuned on
    instance_ids: np.ndarray  # (I,) int64
    source_ids: np.ndarray  # (I,) str: the instance's id at its source, stable across databases
    X_emb: np.ndarray  # (P, e) float32; e = 0 when exported without embeddings
    X_disc: np.ndarray  # (P, d) float32
    disc_names: np.ndarray  # (d,) str
    embedding_model: str  # "" without embeddings
    dropped_revision_ids: np.ndarray  # partly scored phrasings left out
    dropped_cells: np.ndarray  # the cells each of those had
    unscored: int  # approved phrasings with no cell for this variant

    @property
    def accuracy(self) -> np.ndarray:
        """Each phrasing's accuracy on the sample: metrics.py's A_p."""
        return self.Y.mean(axis=1)

    def index_row(self, path: str) -> dict:
        return {
            "benchmark": self.benchmark,
            "task": self.task,
            "variant": self.variant,
            "variant_id": self.variant_id,
            "variant_kind": self.variant_kind,
            "model": self.model,
            "path": path,
            "phrasings": int(self.Y.shape[0]),
            "instances": int(self.Y.shape[1]),
            "mean_accuracy": round(float(self.Y.mean()), 6),
            "dropped_partial": int(self.dropped_revision_ids.size),
            "unscored": self.unscored,
            "embedding_model": self.embedding_model,
            "emb_dim": int(self.X_emb.shape[1]),
            "disc_dim": int(self.X_disc.shape[1]),
        }


def variant_key(variant: ModelVariant) -> str:
    if variant.kind == VariantKind.BASE:
        return variant.model.name
    return f"{variant.model.name}--{variant.kind}-{variant.id}"


def task_matrix(variant: ModelVariant, task: Task, *, embeddings: bool = True) -> TaskMatrix | None:
    """The variant's matrix on the task (see the module docstring), or None when no phrasing is complete."""
    phrasings = list(approved_phrasings(task).order_by("current_revision_id"))
    revisions = [p.current_revision_id for p in phrasings]
    cells = read_matrix(variant, task, revisions)
    scored = cells.observed.sum(axis=1)
    keep = np.flatnonzero(scored == cells.shape[1]) if cells.shape[1] else np.empty(0, dtype=int)
    partial = np.flatnonzero((scored > 0) & (scored < cells.shape[1]))
    if keep.size == 0:
        return None
    rows = [phrasings[k] for k in keep]
    sources = dict(Instance.objects.filter(id__in=cells.instances).values_list("id", "source_id"))
    tuned_on = set(variant.model.tuned_on.values_list("id", flat=True))
    x_disc, names = discrete_features(
        [r.current_revision.template for r in rows],
        vocabulary=framing_vocabulary([p.current_revision.template for p in phrasings]),
    )
    x_emb, model_name = _embeddings([r.current_revision for r in rows]) if embeddings else (None, "")
    return TaskMatrix(
        benchmark=task.benchmark.slug,
        task=task.slug,
        variant=variant_key(variant),
        variant_id=variant.id,
        variant_kind=variant.kind,
        model=variant.model.name,
        Y=cells.right[keep].astype(np.int8),
        revision_ids=np.array([r.current_revision_id for r in rows], dtype=np.int64),
        phrasing_keys=np.array([r.stable_key for r in rows], dtype=str),
        templates=np.array([r.current_revision.template for r in rows], dtype=str),
        collections=np.array([r.collection.slug for r in rows], dtype=str),
        observed=np.array([r.collection_id in tuned_on for r in rows], dtype=bool),
        instance_ids=np.array(cells.instances, dtype=np.int64),
        source_ids=np.array([sources[i] for i in cells.instances], dtype=str),
        X_emb=np.zeros((len(rows), 0), dtype=np.float32) if x_emb is None else x_emb,
        X_disc=x_disc,
        disc_names=np.array(names, dtype=str),
        embedding_model=model_name,
        dropped_revision_ids=np.array([revisions[k] for k in partial], dtype=np.int64),
        dropped_cells=scored[partial].astype(np.int64),
        unscored=int((scored == 0).sum()),
    )


def _embeddings(revisions) -> tuple[np.ndarray, str]:
    """The stored near-duplicate embeddings of these revisions (computing and storing missing ones)."""
    from collection import similarity  # loads sentence-transformers only when embeddings are asked for

    vectors = similarity.embeddings_for(revisions)
    return np.stack([vectors[r.id] for r in revisions]).astype(np.float32), similarity.model_name()


def task_matrices(
    *, benchmark: str | None = None, models: Sequence[str] | None = None, embeddings: bool = True
) -> Iterator[TaskMatrix]:
    """Every (variant, task) with a complete phrasing: of one benchmark or all, of some models or all. A
    variant is tried on a task where it has scored per-phrasing results there (aggregates keep those
    current as predictions land)."""
    tasks = Task.objects.select_related("benchmark").order_by("benchmark__slug", "slug")
    if benchmark is not None:
        tasks = tasks.filter(benchmark__slug=benchmark)
    for task in tasks:
        variant_ids = PhrasingResult.objects.filter(task=task, source=ResultSource.SCORED).values(
            "variant_id"
        )
        variants = ModelVariant.objects.filter(id__in=variant_ids).select_related("model")
        if models is not None:
            variants = variants.filter(model__name__in=models)
        for variant in variants.order_by("model__name", "id"):
            matrix = task_matrix(variant, task, embeddings=embeddings)
            if matrix is not None:
                yield matrix


# ---- files --------------------------------------------------------------------------------------------------------


def matrix_path(matrix: TaskMatrix) -> str:
    """Where a matrix goes under the export directory: <benchmark>/<task>/<variant>.npz (all slugs)."""
    return f"{matrix.benchmark}/{matrix.task}/{matrix.variant}.npz"


def save(matrix: TaskMatrix, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f.name: np.asarray(getattr(matrix, f.name)) for f in fields(matrix)}
    arrays["format"], arrays["format_version"] = np.asarray(FORMAT), np.asarray(FORMAT_VERSION)
    with path.open("wb") as out:  # savez_compressed would add ".npz" to a name without it
        np.savez_compressed(out, **arrays)


def load(path: Path) -> TaskMatrix:
    """A matrix written by `save`, without pickle (every array is numeric, boolean or text)."""
    with np.load(path, allow_pickle=False) as data:
        if str(data.get("format", "")) != FORMAT:
            raise ValueError(f"{path} is not a {FORMAT} file.")
        if int(data["format_version"]) > FORMAT_VERSION:
            raise ValueError(
                f"{path} has format version {int(data['format_version'])}; this reads {FORMAT_VERSION}."
            )
        values = {}
        for f in fields(TaskMatrix):
            value = data[f.name]
            values[f.name] = value.item() if value.ndim == 0 else value
    for name in ("benchmark", "task", "variant", "variant_kind", "model", "embedding_model"):
        values[name] = str(values[name])
    values["variant_id"], values["unscored"] = int(values["variant_id"]), int(values["unscored"])
    return TaskMatrix(**values)


@dataclass
class ExportReport:
    out_dir: Path
    rows: list[dict]
    parquet: bool  # whether index.parquet was written (it needs pyarrow)


def export_matrices(
    out_dir: Path,
    *,
    benchmark: str | None = None,
    models: Sequence[str] | None = None,
    embeddings: bool = True,
) -> ExportReport:
    """Write every matrix of task_matrices() under out_dir, and the index (index.json, and index.parquet
    when pyarrow is installed). Files of an earlier export at the same paths are replaced."""
    if benchmark is not None and not Benchmark.objects.filter(slug=benchmark).exists():
        raise ValueError(f"No benchmark {benchmark!r}.")
    unknown = sorted(
        set(models or ())
        - set(LanguageModel.objects.filter(name__in=models or ()).values_list("name", flat=True))
    )
    if unknown:
        # A misspelt name would otherwise export nothing and say "Wrote 0 matrices" as if that were the answer.
        raise ValueError(f"No model named {', '.join(map(repr, unknown))}.")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for matrix in task_matrices(benchmark=benchmark, models=models, embeddings=embeddings):
        path = matrix_path(matrix)
        save(matrix, out_dir / path)
        rows.append(matrix.index_row(path))
    index = {"format": FORMAT, "format_version": FORMAT_VERSION, "matrices": rows}
    (out_dir / INDEX_JSON).write_text(json.dumps(index, indent=1) + "\n", encoding="utf-8")
    return ExportReport(out_dir, rows, _write_parquet_index(out_dir / INDEX_PARQUET, rows))


def _write_parquet_index(path: Path, rows: list[dict]) -> bool:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return False
    schema = pa.schema([(name, pa.type_for_alias(kind)) for name, kind in INDEX_COLUMNS.items()])
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return True


def read_index(out_dir: Path) -> list[dict]:
    """The index rows of an export directory (index.json)."""
    index = json.loads((Path(out_dir) / INDEX_JSON).read_text(encoding="utf-8"))
    if index.get("format") != FORMAT:
        raise ValueError(f"{out_dir} holds no {FORMAT} index.")
    return index["matrices"]


def load_all(out_dir: Path) -> list[TaskMatrix]:
    return [load(Path(out_dir) / row["path"]) for row in read_index(out_dir)]
