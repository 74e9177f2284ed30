"""Bootstrap replicates stored as bytes beside a task's summary (TaskSummary.replicates), so a benchmark row
is averaged from its tasks' stored replicates (metrics.macro_summary) and one task's change recomputes that
task alone. Pure numpy.

A blob carries the names of the figures it holds: MAGIC, the length of the header, the names (comma-separated,
padded to a multiple of four bytes), then float32 values, one row per figure in that order (15 x 500 x 4
bytes = 30 kB a row). A blob whose names are not the registry's (figure_registry.names: a figure was added
or removed since), or one stored under an earlier MAGIC (before blobs carried names, or drawn with a task's
database id as its seed rather than metrics.task_key of its slug), is stale: `unpack` gives None rather than
reading it, and aggregates recomputes its summary (aggregates.figures_refresh_stale)."""

from __future__ import annotations

import numpy as np

from evaluation.stats import figure_registry

# The blob layout and seeding version. As a float32, b"\xffFIG" read 51527.0: a blob stored before names were
# kept starts with AvgP's first replicate, a fraction, so it can never be taken for one with a header.
# b"\xffFG2": draws seeded by the task's slug (metrics.task_key); b"\xffFIG" blobs were seeded by task id, and
# pairing draw b of one row with draw b of another needs every row's draws seeded the same way.
MAGIC = b"\xffFG2"


def pack(replicates: dict[str, np.ndarray]) -> bytes:
    names = figure_registry.names()
    if set(replicates) != set(names):
        raise ValueError(f"Replicates must name exactly {names}; got {sorted(replicates)}.")
    header = ",".join(names).encode()
    header += b" " * (-len(header) % 4)
    values = np.stack([np.asarray(replicates[name], dtype=np.float32) for name in names])
    return MAGIC + np.uint32(len(header)).tobytes() + header + values.tobytes()


def _header(data: bytes) -> tuple[tuple[str, ...], int] | None:
    """The names a blob holds and where its values start, or None for a blob stored before names were."""
    if not data.startswith(MAGIC):
        return None
    size = int(np.frombuffer(data, dtype=np.uint32, count=1, offset=len(MAGIC))[0])
    start = len(MAGIC) + 4
    return tuple(data[start : start + size].decode().strip().split(",")), start + size


def stored_names(blob: bytes | memoryview) -> tuple[str, ...] | None:
    """The figures a blob holds, or None for one stored before blobs carried their names."""
    header = _header(bytes(blob))
    return header[0] if header is not None else None


def is_current(blob: bytes | memoryview | None) -> bool:
    """Whether a stored blob holds exactly the registry's figures (None, no blob, is not current)."""
    if blob is None:
        return False
    names = stored_names(blob)
    return names is not None and set(names) == set(figure_registry.names())


def unpack(blob: bytes | memoryview) -> dict[str, np.ndarray] | None:
    """The replicates of every figure by name, or None when the blob is stale (see the module docstring)."""
    if not is_current(blob):
        return None
    data = bytes(blob)
    names, start = _header(data)
    values = np.frombuffer(data, dtype=np.float32, offset=start).reshape(len(names), -1)
    return {name: values[i].astype(float) for i, name in enumerate(names)}
