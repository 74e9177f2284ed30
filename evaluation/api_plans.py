"""The API's side of planned bulk work (evaluation/runs/budget.py): read plans, and admins start or discard them."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from core import roles
from core.parsing import parse_id
from evaluation import access
from evaluation.models import ScoringPlan
from evaluation.runs import budget


class IsAdminToAct(permissions.BasePermission):
    message = "Only admins can start or discard planned bulk work."

    def has_permission(self, request, view):
        return request.method in permissions.SAFE_METHODS or roles.can_start_plans(request.user)


class PlanRowSerializer(serializers.Serializer):
    model = serializers.CharField()
    runs = serializers.IntegerField()
    cells = serializers.IntegerField()
    cached = serializers.IntegerField()
    to_compute = serializers.IntegerField()
    seconds = serializers.FloatField(allow_null=True, help_text="Estimated, from recent throughput.")


class PlanSerializer(serializers.ModelSerializer):
    models = serializers.SerializerMethodField()

    @extend_schema(responses=PlanRowSerializer(many=True))
    def get_models(self, plan: ScoringPlan) -> list[dict]:
        return PlanRowSerializer(budget.plan_rows(plan), many=True).data

    class Meta:
        model = ScoringPlan
        fields = ["id", "trigger", "status", "budget_cells", "created_at", "decided_at", "models"]


class PlanViewSet(viewsets.ReadOnlyModelViewSet):
    """Bulk work planned over the budget: cells, cached and estimated time per model. Admins start it
    (its runs go to the bulk lane) or discard it."""

    queryset = ScoringPlan.objects.none()  # for the schema; requests read get_queryset
    serializer_class = PlanSerializer
    permission_classes = [IsAdminToAct]

    def get_queryset(self):
        return access.plans_visible_to(self.request.user).order_by("-id")

    def get_object(self):
        plan_id = parse_id(self.kwargs["pk"])
        if plan_id is None:
            raise Http404("Not found.")
        return access.get_plan_for_user(self.request.user, plan_id, manage=self.action != "retrieve")

    @extend_schema(request=None, responses=PlanSerializer)
    @action(detail=True, methods=["post"])
    def start(self, request, pk=None):
        plan = self.get_object()
        budget.scoring_plan_start(plan=plan, by=request.user)
        plan.refresh_from_db()
        return Response(self.get_serializer(plan).data)

    @extend_schema(request=None, responses=PlanSerializer)
    @action(detail=True, methods=["post"])
    def discard(self, request, pk=None):
        plan = self.get_object()
        budget.scoring_plan_discard(plan=plan, by=request.user)
        plan.refresh_from_db()
        return Response(self.get_serializer(plan).data)
