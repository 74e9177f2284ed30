"""Which approved phrasings soft prompts may train on, and which are held out for honest evaluation.

A phrasing is held out when a hash of (seed, its id) falls below SOFTPROMPT_HELDOUT_FRACTION. Membership
depends on nothing else, so it never changes as phrasings are added, edited or retired: a phrasing held out
from one soft prompt is held out from every later one, and the base model's held-out figures compare with
every soft prompt's. (A per-task ranking would guarantee a held-out phrasing in every task, but a new
phrasing could then push an old held-out one into training; we chose stable membership.)
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from django.conf import settings

from evaluation.models import SoftPrompt, VariantKind


def app_seed(seed: int | None = None) -> int:
    """The given split seed, or the app's (SOFTPROMPT_SPLIT_SEED): the one default every caller shares."""
    return settings.SOFTPROMPT_SPLIT_SEED if seed is None else seed


def is_heldout(instruction_id: int, *, seed: int | None = None, fraction: float | None = None) -> bool:
    seed = app_seed(seed)
    fraction = settings.SOFTPROMPT_HELDOUT_FRACTION if fraction is None else fraction
    digest = hashlib.sha256(f"phrasebench-split:{seed}:{instruction_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def scored_by(variant) -> Callable[[int], bool]:
    """Which phrasings (by instruction id) the variant is scored on. A soft prompt's variant only on those
    held out under its own split seed, recorded when it was queued, whatever the setting says now (under
    another seed some of them would be phrasings it trained on), and never on one it trained on. Every other
    variant scores every phrasing."""
    if variant.kind != VariantKind.SOFT_PROMPT:
        return lambda instruction_id: True
    soft = SoftPrompt.objects.filter(variant=variant).only("split_seed").first()
    if soft is None:  # a soft-prompt variant without its training: nothing is known to be held out from it
        return lambda instruction_id: False
    # And never a phrasing it trained on, whatever SOFTPROMPT_HELDOUT_FRACTION has become since.
    trained = set(soft.training_revisions.values_list("instruction_id", flat=True))
    return lambda instruction_id: (
        instruction_id not in trained and is_heldout(instruction_id, seed=soft.split_seed)
    )
