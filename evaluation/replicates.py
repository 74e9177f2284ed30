"""Bootstrap replicates stored as bytes beside a task's summary (TaskSummary.replicates), so a benchmark row
is averaged from its tasks' stored replicates (metrics.macro_summary) and one task's change recomputes that
task alone. Pure numpy: float32, one row per figure in FIGURES order (15 x 500 x 4 bytes = 30 kB a row)."""

from __future__ import annotations

import numpy as np

from evaluation import metrics

FIGURES = metrics.FIGURE_NAMES


def pack(replicates: dict[str, np.ndarray]) -> bytes:
    if set(replicates) != set(FIGURES):
        raise ValueError(f"Replicates must name exactly {FIGURES}; got {sorted(replicates)}.")
    return np.stack([np.asarray(replicates[name], dtype=np.float32) for name in FIGURES]).tobytes()


def unpack(blob: bytes | memoryview) -> dict[str, np.ndarray]:
    values = np.frombuffer(bytes(blob), dtype=np.float32).reshape(len(FIGURES), -1)
    return {name: values[i].astype(float) for i, name in enumerate(FIGURES)}
