"""The cells of a run over formats (ScoringRun.formats): a phrasing revision laid out in a declared format
(collection/formats.py) on one instance of its task's evaluation sample. The scorer sees the options in
the format's order and answers by position; here each answer is mapped back to the option it names, so a
FormatPrediction keeps the instance's own option order, as a Prediction does, and gold needs no remapping."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db.models import QuerySet

from collection import formats
from collection.answers import option_texts
from collection.models import Instance, InstructionRevision
from collection.selectors import task_eval_sample_ids
from core.errors import ApplicationError
from evaluation.ml.items import OptionScores, ScoringItem
from evaluation.models import FormatPrediction, ModelVariant, ScoringRun

# The declared formats, as keys (as written is the ordinary predictions, so it is not one of them).
DECLARED = tuple(f.key for f in formats.DECLARED)


def checked(keys: Sequence[str], revisions: Iterable[InstructionRevision]) -> list[str]:
    """The run's format keys, refused with a reason when one is unknown or a revision fixes its layout."""
    keys = list(dict.fromkeys(keys))
    if not keys:
        return []
    unknown = [key for key in keys if key not in formats.BY_KEY or key == formats.AS_WRITTEN.key]
    if unknown:
        raise ApplicationError(
            f"Unknown format {unknown[0]!r}; the declared formats are {', '.join(DECLARED)}."
        )
    fixed = [r for r in revisions if not formats.formattable(r.template)]
    if fixed:
        raise ApplicationError(
            f"Phrasing revision {fixed[0].id} fixes the layout of its options in its text; only phrasings "
            "listing them with {options} or {options_} are laid out in formats."
        )
    return keys


def formattable_revisions(revisions: Iterable[InstructionRevision]) -> list[InstructionRevision]:
    return [r for r in revisions if formats.formattable(r.template)]


def scored(
    variant: ModelVariant, revisions, sample: Sequence[int] | None, keys: Sequence[str]
) -> QuerySet[FormatPrediction]:
    cells = FormatPrediction.objects.filter(variant=variant, revision__in=revisions, format_key__in=keys)
    return cells if sample is None else cells.filter(instance_id__in=sample)


@dataclass
class FormatCell:
    revision: InstructionRevision
    instance: Instance
    fmt: formats.OptionFormat

    @property
    def positions(self) -> list[int]:
        # Seeded by the instance's stable id (its source id), so every database shows the same order.
        return formats.order(self.fmt, len(self.instance.options), self.instance.source_id)

    def item(self) -> ScoringItem:
        task = self.revision.instruction.task
        positions = self.positions
        shared, rest = formats.render_parts(
            self.revision.template, self.instance.inputs, self.instance.options, self.fmt, positions
        )
        return ScoringItem(shared, rest, option_texts(task, self.revision, self.instance, positions))

    def prediction(self, run: ScoringRun, scores: OptionScores) -> FormatPrediction:
        positions = self.positions
        logliks, lengths = [0.0] * len(positions), [0] * len(positions)
        for shown, option in enumerate(positions):
            logliks[option], lengths[option] = scores.logliks[shown], scores.lengths[shown]
        predicted = positions[scores.predicted]
        return FormatPrediction(
            variant=run.variant,
            revision=self.revision,
            instance=self.instance,
            format_key=self.fmt.key,
            run=run,
            logliks=logliks,
            lengths=lengths,
            predicted=predicted,
            correct=predicted == self.instance.gold,
            truncated=scores.truncated,
        )


def missing(run: ScoringRun, limit: int | None) -> tuple[int, int, list[FormatCell], bool]:
    """As scoring._missing_cells, for a run over formats: its scope in cells, how many are stored, its first
    `limit` missing cells in a fixed order (task, revision, format, instance), and whether more are missing."""
    total = done = 0
    cells: list[FormatCell] = []
    revisions = list(run.revisions.select_related("instruction__task").order_by("id"))
    by_task: dict = {}
    for revision in revisions:
        by_task.setdefault(revision.instruction.task, []).append(revision)
    for task, task_revisions in by_task.items():
        sample = task_eval_sample_ids(task)
        total += len(sample) * len(task_revisions) * len(run.formats)
        have = set(
            scored(run.variant, task_revisions, sample, run.formats).values_list(
                "revision_id", "format_key", "instance_id"
            )
        )
        done += len(have)
        if limit is not None and len(cells) > limit:
            continue
        instances = Instance.objects.in_bulk(sample)
        for revision in task_revisions:
            for key in run.formats:
                cells += [
                    FormatCell(revision, instances[i], formats.BY_KEY[key])
                    for i in sample
                    if (revision.id, key, i) not in have
                ]
    more = limit is not None and len(cells) > limit
    return total, done, cells[:limit] if limit is not None else cells, more
