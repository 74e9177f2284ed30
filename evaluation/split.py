"""Which approved phrasings soft prompts may train on, and which are held out for honest evaluation.

A phrasing is held out when a hash of (seed, its stable key) falls below SOFTPROMPT_HELDOUT_FRACTION. The
stable key (collection.models.phrasing_key: its benchmark, task and first text) is the same on every database,
so a SQLite and a PostgreSQL install of the same data, or two fresh installs, hold out the same phrasings
(database ids differ between them; the split used to hash the id). Membership depends on nothing else, so it never changes as phrasings are added, edited or retired: a phrasing held out
from one soft prompt is held out from every later one, and the base model's held-out figures compare with
every soft prompt's. (A per-task ranking would guarantee a held-out phrasing in every task, but a new
phrasing could then push an old held-out one into training; we chose stable membership.)
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from django.conf import settings

from collection.models import Instruction
from evaluation.models import SoftPrompt, VariantKind


def app_seed(seed: int | None = None) -> int:
    """The given split seed, or the app's (SOFTPROMPT_SPLIT_SEED): the one default every caller shares."""
    return settings.SOFTPROMPT_SPLIT_SEED if seed is None else seed


def is_heldout(stable_key: str, *, seed: int | None = None, fraction: float | None = None) -> bool:
    """Whether the phrasing with this stable key (Instruction.stable_key) is held out under the split seed."""
    seed = app_seed(seed)
    fraction = settings.SOFTPROMPT_HELDOUT_FRACTION if fraction is None else fraction
    digest = hashlib.sha256(f"phrasebench-split:{seed}:{stable_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def scored_by(variant) -> Callable[[Instruction], bool]:
    """Which phrasings the variant is scored on. A soft prompt's variant only on those
    held out under its own split seed, recorded when it was queued, whatever the setting says now (under
    another seed some of them would be phrasings it trained on), and never on one it trained on. Every other
    variant scores every phrasing."""
    if variant.kind != VariantKind.SOFT_PROMPT:
        return lambda instruction: True
    soft = SoftPrompt.objects.filter(variant=variant).only("split_seed").first()
    if soft is None:  # a soft-prompt variant without its training: nothing is known to be held out from it
        return lambda instruction: False
    # And never a phrasing it trained on, whatever SOFTPROMPT_HELDOUT_FRACTION has become since.
    trained = set(soft.training_revisions.values_list("instruction_id", flat=True))
    return lambda instruction: (
        instruction.id not in trained and is_heldout(instruction.stable_key, seed=soft.split_seed)
    )


def trained_on_heldout(soft: SoftPrompt) -> list[int]:
    """The phrasings the soft prompt trained on that its split holds out now: none for one trained under the
    split as it is; some for one trained before the split hashed stable keys (2026-12-05: it hashed database
    ids), which an upgraded database keeps. scored_by never scores it on them, so its held-out rows cover
    fewer phrasings; its page says why."""
    trained = soft.training_revisions.values_list("instruction_id", "instruction__stable_key")
    return sorted({i for i, key in trained if is_heldout(key, seed=soft.split_seed)})
