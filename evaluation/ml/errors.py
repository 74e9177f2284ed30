"""Errors the scorer raises. The Django side turns the permanent ones into a failed run with this message."""


class ScoringError(Exception):
    """Base class: a permanent failure with a message a person can act on."""


class ModelLoadError(ScoringError):
    """The model or its tokenizer could not be loaded (missing path, unknown hub id, bad files)."""


class OutOfMemoryAtBatchSizeOne(ScoringError):
    """Even one instance at a time does not fit in memory on this device."""


class OutOfMemoryInTraining(ScoringError):
    """A soft-prompt training step does not fit in memory; the message says which settings to lower."""
