"""API for models, scoring runs, results and leaderboards. Writes go through the same services as the pages."""

from __future__ import annotations

import django_filters
from django.conf import settings
from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action, api_view
from rest_framework.response import Response

from collection.models import Benchmark, Collection, Task
from core import roles
from core.job_actions import JobActionsMixin
from core.page_cache import cached_api, page_version
from core.parsing import IdFilter, parse_id
from evaluation import access
from evaluation.leaderboards import aggregates, comparisons, format_variance, fragile, selectors
from evaluation.models import LanguageModel, PhrasingResult, PhrasingSet, ScoringRun, named_variants
from evaluation.runs import registry
from evaluation.stats import figure_registry, ranking


class IsAdminToWrite(permissions.BasePermission):
    message = "Only admins can register models."

    def has_permission(self, request, view):
        return request.method in permissions.SAFE_METHODS or roles.can_manage_models(request.user)


class IsCuratorToAct(permissions.BasePermission):
    message = "Only curators and admins can cancel or retry runs."

    def has_permission(self, request, view):
        return request.method in permissions.SAFE_METHODS or roles.can_manage_runs(request.user)


class ModelSerializer(serializers.ModelSerializer):
    tuned_on = serializers.SlugRelatedField(
        slug_field="slug", many=True, queryset=Collection.objects.all(), required=False
    )

    class Meta:
        model = LanguageModel
        fields = [
            "id",
            "name",
            "description",
            "source",
            "revision",
            "family",
            "dtype",
            "prompt_format",
            "tuned_on",
            "batch_size",
            "is_active",
            "trust_remote_code",
            "state",
            "check_error",
            "checked_at",
            "max_input_tokens",
            "truncation",
            "created_at",
        ]
        # Never from user input: an admin turns remote code on in Django admin, after reading it. What the
        # check found is the check's to write; the input length is too, unless given at registration.
        read_only_fields = [
            "id",
            "is_active",
            "trust_remote_code",
            "state",
            "check_error",
            "checked_at",
            "created_at",
        ]
        extra_kwargs = {"max_input_tokens": {"min_value": 1}}

    def to_representation(self, instance):
        data = super().to_representation(instance)
        request = self.context.get("request")
        if request is None or not roles.is_admin(request.user):
            # Paths on our disks and the loader's messages about them are for admins only.
            data["source"] = instance.public_source
            data["check_error"] = ""
        return data


class ModelViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Registered models. POST (admins, token or session) registers one: a GPU worker checks that it loads
    (`state`: checking, then ready or failed with `check_error`), and a ready model's scoring is queued.
    POST `<name>/retry-check/` (admins) checks it again."""

    queryset = LanguageModel.objects.none()  # for the schema; requests read get_queryset
    serializer_class = ModelSerializer
    permission_classes = [IsAdminToWrite]
    lookup_field = "name"

    def get_queryset(self):
        return access.models_visible_to(self.request.user).prefetch_related("tuned_on").order_by("name")

    def get_object(self):
        return access.get_model_for_user(self.request.user, self.kwargs[self.lookup_field])

    def perform_create(self, serializer):
        # What the request left out takes registry.ModelRegistration's defaults.
        serializer.instance = registry.language_model_register(
            **serializer.validated_data, by=self.request.user
        )

    @extend_schema(request=None, responses=ModelSerializer)
    @action(detail=True, methods=["post"], url_path="retry-check")
    def retry_check(self, request, name=None):
        model = access.get_model_for_user(request.user, name, manage=True)
        registry.language_model_check_retry(model=model, by=request.user)
        model.refresh_from_db()
        return Response(ModelSerializer(model, context=self.get_serializer_context()).data)


class RunSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="variant.model.name", read_only=True)
    variant = serializers.CharField(source="variant.__str__", read_only=True)
    to_compute = serializers.IntegerField(read_only=True)

    def to_representation(self, instance):
        data = super().to_representation(instance)
        request = self.context.get("request")
        if request is None or not roles.is_admin(request.user):
            # A loader's error names the model's source; a path on our disks is for admins only.
            data["error"] = instance.variant.model.without_source(instance.error)
        return data

    class Meta:
        model = ScoringRun
        fields = [
            "id",
            "model",
            "variant",
            "task",
            "instruction",
            "status",
            "trigger",
            "mode",
            "budget_cells",
            "total_cells",
            "cached_cells",
            "to_compute",
            "done_cells",
            "error",
            "attempts",
            "worker",
            "created_at",
            "started_at",
            "finished_at",
        ]


class RunFilter(django_filters.FilterSet):
    model = django_filters.CharFilter(field_name="variant__model__name")

    class Meta:
        model = ScoringRun
        fields = ["status", "model", "task"]


class RunViewSet(JobActionsMixin, viewsets.ReadOnlyModelViewSet):
    """Scoring runs with their progress. Curators and admins cancel and retry them (POST `<id>/cancel/`,
    `<id>/retry/`)."""

    queryset = ScoringRun.objects.none()  # for the schema; requests read get_queryset
    serializer_class = RunSerializer
    permission_classes = [IsCuratorToAct]
    filterset_class = RunFilter

    def get_queryset(self):
        return named_variants(access.runs_visible_to(self.request.user)).order_by("-id")

    def get_object(self):
        manage = self.action != "retrieve"
        return access.get_run_for_user(self.request.user, _int_key(self.kwargs["pk"]), manage=manage)


class ResultSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="variant.model.name", read_only=True)
    variant_kind = serializers.CharField(source="variant.kind", read_only=True)
    instruction = serializers.IntegerField(source="revision.instruction_id", read_only=True)
    collection = serializers.CharField(source="revision.instruction.collection.slug", read_only=True)
    estimate = serializers.SerializerMethodField(
        help_text="A phrasing an adaptive run scored in part: its estimated accuracy over the whole sample "
        "and 95% interval, as {accuracy, ci}; null otherwise (`accuracy` is then over its scored cells)."
    )

    def get_estimate(self, result) -> dict | None:
        # The page's estimates, read once by the view (ResultViewSet.list), not one query per result.
        found = self.context.get("estimates", {}).get((result.variant_id, result.task_id), {})
        value = None if result.complete else found.get(str(result.revision_id))
        return None if value is None else {"accuracy": value[0], "ci": value[1:]}

    class Meta:
        model = PhrasingResult
        fields = [
            "model",
            "variant_kind",
            "task",
            "instruction",
            "revision",
            "collection",
            "accuracy",
            "n_correct",
            "n_total",
            "complete",
            "estimate",
            "source",
            "provenance",
        ]


class ResultFilter(django_filters.FilterSet):
    model = django_filters.CharFilter(field_name="variant__model__name")
    benchmark = django_filters.CharFilter(field_name="task__benchmark__slug")
    instruction = IdFilter(field_name="revision__instruction_id")

    class Meta:
        model = PhrasingResult
        fields = ["task", "model", "benchmark", "instruction", "source"]


class ResultViewSet(viewsets.ReadOnlyModelViewSet):
    """Per-phrasing accuracies (scored here or imported). With `?task=<id>&include=fragile`, also each scored
    variant's most fragile instances on the task (`fragile`: ranked by flip rate, then POSIX, with every
    phrasing's prediction; docs/sensitivity.md), for the variants the other filters keep. With
    `include=formats`, each variant's wording-vs-format decomposition on the task (`formats`: the shares of
    the spread across prompts with 95% intervals, and each declared format's mean accuracy; docs/variance.md).
    Both: `include=fragile,formats`."""

    queryset = PhrasingResult.objects.none()  # for the schema; requests read get_queryset
    serializer_class = ResultSerializer
    filterset_class = ResultFilter

    def get_queryset(self):
        # Only results of phrasings the user may see, so ?instruction= on a hidden one finds nothing.
        return (
            named_variants(access.results_visible_to(self.request.user))
            .select_related("revision__instruction__collection")
            .order_by("id")
        )

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "include",
                OpenApiTypes.STR,
                description="With ?task=, comma-separated: fragile (each scored variant's most fragile instances "
                "on the task), formats (each variant's wording-vs-format decomposition on the task)",
            ),
            OpenApiParameter(
                "fragile_top",
                OpenApiTypes.INT,
                description=f"Instances per variant in `fragile` (1 to {fragile.MAX_TOP}, default {fragile.TOP})",
            ),
        ]
    )
    def list(self, request, *args, **kwargs):
        include = {
            part.strip() for part in request.query_params.get("include", "").split(",") if part.strip()
        }
        if include - {"fragile", "formats"}:
            return Response(
                {"detail": "include takes fragile, formats or both (comma-separated), or is left out."},
                status=400,
            )
        queryset = self.filter_queryset(self.get_queryset())
        top = fragile.TOP
        if include:
            task = Task.objects.filter(id=parse_id(request.query_params.get("task"))).first()
            if task is None:
                return Response({"detail": "include needs ?task=<task id>."}, status=400)
            if "fragile_top" in request.query_params:
                top = parse_id(request.query_params["fragile_top"])
                if top is None or top > fragile.MAX_TOP:
                    return Response(
                        {"detail": f"fragile_top must be a whole number from 1 to {fragile.MAX_TOP}."},
                        status=400,
                    )
        page = self.paginate_queryset(queryset)
        context = self.get_serializer_context() | {"estimates": selectors.result_estimates(page)}
        response = self.get_paginated_response(self.serializer_class(page, many=True, context=context).data)
        if "fragile" in include:
            response.data["fragile"] = _fragile_lists(task, queryset, top)
        if "formats" in include:
            kept = set(queryset.values_list("variant_id", flat=True))
            response.data["formats"] = [
                format_variance.as_dict(v, format_variance.cached_spread(v, task))
                for v in format_variance.variants_with_formats(task)
                if v.id in kept
            ]
        return response

    def retrieve(self, request, *args, **kwargs):
        result = self.get_object()
        context = self.get_serializer_context() | {"estimates": selectors.result_estimates([result])}
        return Response(self.serializer_class(result, context=context).data)


def _fragile_lists(task: Task, results, top: int) -> list[dict]:
    """Each scored variant's most fragile instances on the task, for the variants among `results`."""
    kept = set(results.values_list("variant_id", flat=True))
    version = selectors.task_version(task)
    return [
        {"model": v.model.name, "variant": str(v), "kind": v.kind}
        | fragile.fragile_instances(v, task, top=top, version=version).as_dict()
        for v in fragile.scored_variants(task)
        if v.id in kept
    ]


def _int_key(value: str) -> int:
    # The router's pattern accepts any text; a key that is not an id names nothing.
    number = parse_id(value)
    if number is None:
        raise Http404("Not found.")
    return number


# Every phrasing set the pages offer (evaluation.models.PhrasingSet).
SET_CHOICES = list(PhrasingSet.values)


@extend_schema(
    parameters=[
        OpenApiParameter(
            "benchmark", OpenApiTypes.STR, required=True, description="Benchmark slug, e.g. mmlu"
        ),
        OpenApiParameter("set", OpenApiTypes.STR, enum=SET_CHOICES, description="Phrasing set (default all)"),
        OpenApiParameter("kind", OpenApiTypes.STR, description="Task kind; blank for every kind"),
        OpenApiParameter("sort", OpenApiTypes.STR, description="A figure name or 'model' (default avgp)"),
        OpenApiParameter("dir", OpenApiTypes.STR, enum=["asc", "desc"]),
        OpenApiParameter(
            "partial",
            OpenApiTypes.STR,
            enum=["0", "1"],
            description="1: also list the rows with partial coverage (apart, on their own cells)",
        ),
    ],
    responses=OpenApiTypes.OBJECT,
)
@api_view(["GET"])
@cached_api(
    lambda request: (
        ("api-leaderboard", slug, selectors.leaderboard_version(slug))
        if (slug := request.GET.get("benchmark"))
        else None
    )
)
def leaderboard(request):
    """Every robustness figure per model variant: macro averages over the benchmark's tasks, with 95% CIs."""
    slug = request.query_params.get("benchmark")
    if not slug:
        return Response({"detail": "Give ?benchmark=<slug>."}, status=status.HTTP_400_BAD_REQUEST)
    benchmark = get_object_or_404(Benchmark, slug=slug)
    phrasing_set = request.query_params.get("set", "all")
    if phrasing_set not in SET_CHOICES:
        return Response({"detail": f"set must be one of {', '.join(SET_CHOICES)}."}, status=400)
    board = selectors.leaderboard(
        benchmark=benchmark,
        # The version the cache decorator computed for this request, without asking the database again.
        version=page_version(request, lambda: selectors.leaderboard_version(benchmark)),
        phrasing_set=phrasing_set,
        task_kind=request.query_params.get("kind", ""),
        sort=request.query_params.get("sort", "avgp"),
        descending=request.query_params.get("dir", "desc") != "asc",
    )

    def record(r) -> dict:
        return {
            "model": r.variant.model.name,
            "variant": str(r.variant),
            "variant_id": r.variant.id,
            "kind": r.variant.kind,
            "provenance": r.variant.provenance,
            "coverage": r.coverage.as_dict() if r.coverage else None,
            "on_common_ground": not (r.partial or r.estimated),
            # On the sort figure, among the ranked rows (evaluation/stats/ranking.py); null for rows not ranked.
            "rank_interval": [r.standing.rank_low, r.standing.rank_high] if r.standing else None,
            "tie_group": r.standing.tie_group if r.standing else None,
            "below_chance": r.below_chance,
            "estimated": r.estimated,
            "cells_share": r.figures.get("cells_share", 1.0),
            # The tasks the row's figures average over (aggregates.TASKS_RULE); null for figures stored before
            # they were recorded, until their next refresh.
            "tasks_counted": r.figures.get("tasks_counted"),
            **r.figures,
        }

    body = {
        "benchmark": benchmark.slug,
        "phrasing_set": phrasing_set,
        "convention": (
            "Benchmark figures are macro averages over tasks; accuracies and their differences as fractions of "
            "1 (unit pct and pp in `figures`), POSIX and PDR as ratios; 95% bootstrap CIs. Ranked "
            "rows are compared on their common ground; spread figures are null where no task has "
            f"{settings.SPREAD_MIN_PHRASINGS} phrasings. Rows under `estimated` are estimates from "
            "`cells_share` of their cells, with intervals for the exhaustive figures."
        ),
        "ground": board.ground.as_dict(),
        # Every figure the rows carry: name, label, unit, definition (evaluation/stats/figure_registry.py).
        "figures": figure_registry.describe(),
        "tasks_rule": aggregates.TASKS_RULE,
        "ranking_rule": ranking.RULE,
        "results": [record(r) for r in board.rows],
        # Rows with a task scored only in part (an adaptive run): estimated figures, 95% intervals for the
        # exhaustive ones, the share of cells scored; not ranked with the results.
        "estimated": [record(r) for r in board.estimated],
    }
    if request.query_params.get("partial") == "1":
        body["partial"] = [record(r) for r in board.partial]
    return Response(body)


@extend_schema(
    parameters=[
        OpenApiParameter("benchmark", OpenApiTypes.STR, required=True, description="Benchmark slug"),
        OpenApiParameter("a", OpenApiTypes.INT, required=True, description="Variant id of model A"),
        OpenApiParameter("b", OpenApiTypes.INT, required=True, description="Variant id of model B"),
        OpenApiParameter(
            "set",
            OpenApiTypes.STR,
            enum=list(comparisons.COMPARABLE_SETS),
            description="Phrasings compared on (default all)",
        ),
    ],
    responses=OpenApiTypes.OBJECT,
)
@api_view(["GET"])
def compare(request):
    """Two variants on the cells they share: every figure's A - B with a paired 95% interval, overall (macro
    average over tasks) and per task. Variant ids are those of /api/leaderboard/ rows (`variant_id`)."""
    slug = request.query_params.get("benchmark")
    if not slug:
        return Response({"detail": "Give ?benchmark=<slug>&a=<variant id>&b=<variant id>."}, status=400)
    benchmark = get_object_or_404(Benchmark, slug=slug)
    variants = {v.id: v for v in comparisons.comparable_variants(benchmark)}
    a = variants.get(parse_id(request.query_params.get("a")))
    b = variants.get(parse_id(request.query_params.get("b")))
    if a is None or b is None:
        return Response(
            {
                "detail": f"a and b must be ids of variants with results on {benchmark.slug}: {sorted(variants)}."
            },
            status=400,
        )
    try:
        paired = comparisons.compare_variants(
            benchmark=benchmark,
            a=a,
            b=b,
            phrasing_set=request.query_params.get("set", PhrasingSet.ALL),
            version=selectors.leaderboard_version(benchmark),
        )
    except comparisons.NotComparable as exc:
        return Response({"detail": str(exc)}, status=400)

    def side(v):
        return {"variant_id": v.id, "model": v.model.name, "variant": str(v), "kind": v.kind}

    return Response(
        {
            "benchmark": benchmark.slug,
            "phrasing_set": paired.phrasing_set,
            "a": side(a),
            "b": side(b),
            "ground": {"tasks": len(paired.tasks), "phrasings": paired.phrasings},
            "ci_method": paired.result.ci_method,
            "convention": "difference = a - b, fractions in [0, 1]; 95% paired bootstrap intervals.",
            "overall": {name: d.as_dict() for name, d in paired.result.overall.items()},
            "tasks": [
                {"task": task.slug, "figures": {name: d.as_dict() for name, d in figures.items()}}
                for task, figures in paired.task_rows()
            ],
        }
    )
