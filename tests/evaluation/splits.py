"""The held-out split asked by instruction id, for tests that hold ids (the app asks by stable key)."""

from collection.models import Instruction
from evaluation.split import is_heldout


def heldout_id(instruction_id: int, **kwargs) -> bool:
    return is_heldout(Instruction.objects.get(pk=instruction_id).stable_key, **kwargs)
