"""A scoring run executed in a command's foreground, with a progress bar (the score commands share it)."""

from __future__ import annotations

import uuid

from tqdm import tqdm

from evaluation.models import ScoringRun
from evaluation.runs import scoring


def execute_with_bar(run: ScoringRun, *, total: int, done: int, desc: str) -> ScoringRun | None:
    """Execute the run here, its progress drawn as it lands; the run as it ended (None: not claimed)."""
    with tqdm(total=total, initial=done, desc=desc, unit="cell") as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        return scoring.scoring_run_execute(run_id=run.id, task_id=f"cli-{uuid.uuid4()}", on_progress=progress)
