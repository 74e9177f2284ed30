"""What evaluation does when phrasings change (the events are defined in collection/events.py). Connected
once, in EvaluationConfig.ready()."""

from __future__ import annotations

from django.dispatch import receiver

from collection import events
from evaluation.leaderboards import aggregates
from evaluation.models import RunTrigger
from evaluation.robustness import softprompts
from evaluation.runs import budget, scoring


@receiver(events.phrasing_approved, dispatch_uid="evaluation.on_phrasing_approved")
def on_phrasing_approved(*, instruction, by=None, **kwargs) -> None:
    # Saved with the approval, sent to the workers once it commits.
    runs = scoring.scoring_on_approval(instruction=instruction, by=by)
    # Cells already scored need no run, but their figures must count the phrasing again (a reinstatement).
    aggregates.aggregates_enqueue_for_revision(
        revision_id=instruction.current_revision_id,
        task_id=instruction.task_id,
        except_variants={run.variant_id for run in runs},
    )
    # Aligned models retrain their soft prompt once enough new phrasings have been approved.
    softprompts.softprompts_on_approval(by=by)


@receiver(events.phrasing_withdrawn, dispatch_uid="evaluation.on_phrasing_withdrawn")
def on_phrasing_withdrawn(*, instruction, **kwargs) -> None:
    # Its results leave the leaderboards: recompute the figures without it.
    aggregates.aggregates_enqueue_for_task(task=instruction.task)


@receiver(events.phrasings_imported, dispatch_uid="evaluation.on_phrasings_imported")
def on_phrasings_imported(**kwargs) -> list[str]:
    # Queue imported approved phrasings on every active model (bulk work: planned for an admin when over the
    # budget, evaluation/runs/budget.py).
    runs = scoring.scoring_for_active_models(trigger=RunTrigger.IMPORT)
    if not runs:
        return []
    plan = runs[0].plan
    return [budget.bulk_summary(runs), *(budget.plan_text(plan)[1:] if plan else [])]
