"""Who may see and act on models, scoring runs, soft prompts and results. Lookups go through the
`get_<thing>_for_user` helpers (404 when the user may not see it, PermissionDenied when they may see it but
not act on it); lists, filters and exports start from the `<things>_visible_to` querysets.

Models, soft prompts and runs are public; acting on them is for curators (runs, trainings) or admins
(models). What they say about phrasings follows collection's rule (collection/access.py): a run made for one
phrasing is seen by whoever sees that phrasing, and results and the phrasings listed in a run or a training
are narrowed to those the user may see.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404

from collection.access import instructions_visible_to, revisions_visible_to
from core import roles
from core.jobs import JobStatus
from evaluation.models import (
    LanguageModel,
    PhrasingResult,
    ReleaseExport,
    ScoringPlan,
    ScoringRun,
    SoftPrompt,
    named_variants,
)


def models_visible_to(user) -> QuerySet[LanguageModel]:
    return LanguageModel.objects.all()


def runs_visible_to(user) -> QuerySet[ScoringRun]:
    runs = ScoringRun.objects.all()
    if roles.is_curator(user):
        return runs
    # A run of a whole task or model names no phrasing; one made for a phrasing names it.
    return runs.filter(Q(instruction__isnull=True) | Q(instruction__in=instructions_visible_to(user)))


def softprompts_visible_to(user) -> QuerySet[SoftPrompt]:
    return SoftPrompt.objects.all()


def results_visible_to(user) -> QuerySet[PhrasingResult]:
    results = PhrasingResult.objects.all()
    if roles.is_curator(user):
        return results
    return results.filter(revision__in=revisions_visible_to(user))


def get_model_for_user(user, name: str, *, manage: bool = False) -> LanguageModel:
    """Anyone may look at a model; only admins register, score or align it."""
    model = models_visible_to(user).prefetch_related("tuned_on").filter(name=name).first()
    if model is None:
        raise Http404("No such model.")
    if manage and not roles.can_manage_models(user):
        raise PermissionDenied("Only admins can start scoring or training by hand.")
    return model


def get_run_for_user(user, run_id: int, *, manage: bool = False) -> ScoringRun:
    """Anyone may look at a run they may see; only curators and admins may cancel or retry it."""
    run = (
        named_variants(runs_visible_to(user))
        .select_related("task__benchmark", "instruction", "created_by")
        .filter(id=run_id)
        .first()
    )
    if run is None:
        raise Http404("No such run.")
    if manage and not roles.can_manage_runs(user):
        raise PermissionDenied("Only curators and admins can cancel or retry runs.")
    return run


def releases_visible_to(user) -> QuerySet[ReleaseExport]:
    """Finished releases for everyone (they hold only what anonymous visitors see); admins see every export,
    queued and failed ones too. Newest first."""
    exports = ReleaseExport.objects.select_related("created_by").order_by("-id")
    return exports if roles.can_export_releases(user) else exports.filter(status=JobStatus.SUCCEEDED)


def plans_visible_to(user) -> QuerySet[ScoringPlan]:
    # A plan names models and counts cells, never a phrasing: public, like the runs of whole tasks.
    return ScoringPlan.objects.all()


def get_plan_for_user(user, plan_id: int, *, manage: bool = False) -> ScoringPlan:
    """Anyone may read a plan; only admins may start or discard it."""
    plan = plans_visible_to(user).select_related("created_by", "decided_by").filter(id=plan_id).first()
    if plan is None:
        raise Http404("No such plan.")
    if manage and not roles.can_start_plans(user):
        raise PermissionDenied("Only admins can start or discard planned bulk work.")
    return plan


def get_softprompt_for_user(user, soft_prompt_id: int, *, manage: bool = False) -> SoftPrompt:
    """Anyone may look at a soft prompt's training; only curators and admins may cancel or retry it."""
    soft = softprompts_visible_to(user).select_related("model", "variant").filter(id=soft_prompt_id).first()
    if soft is None:
        raise Http404("No such soft prompt.")
    if manage and not roles.can_manage_runs(user):
        raise PermissionDenied("Only curators and admins can cancel or retry trainings.")
    return soft
