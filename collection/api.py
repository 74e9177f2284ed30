"""API for benchmarks, tasks and phrasings. Authoring and review go through the same services as the pages:
POST /api/instructions/ submits, PATCH edits one's own pending phrasing, POST .../review/ decides (curators),
POST /api/instructions/check/ validates a draft and lists the task's most similar phrasings, POST
.../tags/ replaces a phrasing's tags (its author or a curator)."""

from __future__ import annotations

import django_filters
from django.conf import settings
from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from collection import access, services, similarity, templating
from collection.models import Benchmark, Instruction, Task
from core import roles
from core.parsing import parse_id


class BenchmarkSerializer(serializers.ModelSerializer):
    class Meta:
        model = Benchmark
        fields = ["slug", "name", "description", "source"]


class TaskSerializer(serializers.ModelSerializer):
    benchmark = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    parent = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Task
        fields = [
            "id",
            "benchmark",
            "slug",
            "name",
            "description",
            "kind",
            "answer_format",
            "input_fields",
            "label_space",
            "max_options",
            "parent",
            "eval_sample_size",
            "eval_sample_seed",
            "source",
        ]


class InstructionSerializer(serializers.ModelSerializer):
    task = serializers.PrimaryKeyRelatedField(read_only=True)
    reviewer = serializers.SlugRelatedField(slug_field="username", read_only=True)
    collection = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    author = serializers.SlugRelatedField(slug_field="username", read_only=True)
    template = serializers.CharField(source="current_revision.template", read_only=True)
    labels = serializers.JSONField(source="current_revision.labels", read_only=True)
    revision = serializers.IntegerField(source="current_revision_id", read_only=True)
    tags = serializers.SlugRelatedField(slug_field="slug", many=True, read_only=True)

    class Meta:
        model = Instruction
        fields = [
            "id",
            "task",
            "collection",
            "author",
            "source",
            "external_id",
            "text_available",
            "status",
            "revision",
            "template",
            "labels",
            "tags",
            "review_reason",
            "reviewer",
            "created_at",
        ]


class DraftSerializer(serializers.Serializer):
    task = serializers.PrimaryKeyRelatedField(queryset=Task.objects.all())
    template = serializers.CharField(trim_whitespace=False, max_length=100_000)
    labels = serializers.ListField(
        child=serializers.CharField(max_length=100), required=False, allow_null=True, max_length=50
    )
    tags = serializers.ListField(
        child=serializers.CharField(max_length=40),
        required=False,
        max_length=50,
        help_text="Slugs from the tag vocabulary (what the phrasing varies: terse, formal, question...).",
    )


class EditSerializer(serializers.Serializer):
    template = serializers.CharField(trim_whitespace=False, max_length=100_000)
    labels = serializers.ListField(
        child=serializers.CharField(max_length=100), required=False, allow_null=True, max_length=50
    )
    tags = serializers.ListField(
        child=serializers.CharField(max_length=40),
        required=False,
        max_length=50,
        help_text="Slugs from the tag vocabulary ; left out: the tags stay as they are.",
    )


class TagsSerializer(serializers.Serializer):
    tags = serializers.ListField(
        child=serializers.CharField(max_length=40),
        required=True,
        max_length=50,
        help_text="Slugs from the tag vocabulary (what the phrasing varies: terse, formal, question...).",
    )


class ReviewSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=[s.value for s in services.REVIEW_DECISIONS])
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)
    revision = serializers.IntegerField(
        min_value=1,
        max_value=2**63 - 1,
        help_text="The revision you read (the phrasing's `revision` field when you fetched it). If the "
        "phrasing has been edited since, the answer is 409 with the new revision and text; nothing is decided.",
    )


class SimilarSerializer(serializers.Serializer):
    instruction = serializers.IntegerField(source="instruction.id")
    status = serializers.CharField(source="instruction.status")
    template = serializers.CharField(source="instruction.template")
    similarity = serializers.FloatField()
    exact = serializers.BooleanField()
    near = serializers.BooleanField()


class CheckSerializer(serializers.Serializer):
    valid = serializers.BooleanField()
    errors = serializers.ListField(child=serializers.CharField())
    warnings = serializers.ListField(child=serializers.CharField())
    similar = SimilarSerializer(many=True)
    pending = serializers.IntegerField(
        help_text="Phrasings of the task not compared yet: their embeddings are being computed in the "
        "background (say, just uploaded). Ask again shortly to compare with them too."
    )


class BenchmarkViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Benchmark.objects.order_by("slug")
    serializer_class = BenchmarkSerializer
    lookup_field = "slug"


class TaskFilter(django_filters.FilterSet):
    benchmark = django_filters.CharFilter(field_name="benchmark__slug")
    top_level = django_filters.BooleanFilter(field_name="parent", lookup_expr="isnull")

    class Meta:
        model = Task
        fields = ["benchmark", "kind", "top_level"]


class TaskViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Task.objects.select_related("benchmark", "parent").order_by("benchmark__slug", "slug")
    serializer_class = TaskSerializer
    filterset_class = TaskFilter


class InstructionFilter(django_filters.FilterSet):
    collection = django_filters.CharFilter(field_name="collection__slug")
    mine = django_filters.BooleanFilter(method="filter_mine", label="Only my phrasings (any status)")
    tag = django_filters.CharFilter(field_name="tags__slug", label="Only phrasings with this tag")

    class Meta:
        model = Instruction
        fields = ["task", "collection", "status"]

    def filter_mine(self, queryset, name, value):
        user = self.request.user
        return queryset.filter(author=user) if value and user.is_authenticated else queryset


class CanAuthor(permissions.BasePermission):
    message = "Log in to write phrasings."

    def has_permission(self, request, view):
        return request.method in permissions.SAFE_METHODS or roles.can_submit(request.user)


class InstructionViewSet(mixins.CreateModelMixin, mixins.UpdateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Phrasings. Everyone reads approved ones; authors also see their own in any status, curators all.
    POST submits a phrasing for review; PATCH edits one's own phrasing while it waits for review."""

    serializer_class = InstructionSerializer
    filterset_class = InstructionFilter
    permission_classes = [CanAuthor]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        return (
            access.instructions_visible_to(self.request.user)
            .select_related("collection", "author", "reviewer", "current_revision")
            .prefetch_related("tags")
            .order_by("id")
        )

    def _pk(self) -> int:
        # The router's pattern accepts any text; a key that is not a number names no phrasing.
        number = parse_id(self.kwargs[self.lookup_field])
        if number is None:
            raise Http404("No such phrasing.")
        return number

    @extend_schema(request=DraftSerializer, responses={201: InstructionSerializer})
    def create(self, request, *args, **kwargs):
        draft = DraftSerializer(data=request.data)
        draft.is_valid(raise_exception=True)
        instruction = services.instruction_submit(author=request.user, **draft.validated_data)
        return Response(InstructionSerializer(instruction).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=EditSerializer, responses=InstructionSerializer)
    def partial_update(self, request, *args, **kwargs):
        instruction = access.get_instruction_for_user(request.user, self._pk(), action=access.EDIT)
        edit = EditSerializer(data=request.data)
        edit.is_valid(raise_exception=True)
        instruction = services.instruction_edit(
            instruction=instruction, by=request.user, **edit.validated_data
        )
        return Response(InstructionSerializer(instruction).data)

    @extend_schema(request=ReviewSerializer, responses=InstructionSerializer)
    @action(detail=True, methods=["post"])
    def review(self, request, pk=None):
        """Approve, reject (with a reason) or ask for an edit (with a reason) while a phrasing waits for
        review; retire an approved one. Curators only; the review service refuses any other change."""
        instruction = access.get_instruction_for_user(request.user, self._pk(), action=access.REVIEW)
        decision = ReviewSerializer(data=request.data)
        decision.is_valid(raise_exception=True)
        services.instruction_review(
            instruction=instruction,
            reviewer=request.user,
            status=decision.validated_data["decision"],
            reason=decision.validated_data["reason"],
            revision=decision.validated_data["revision"],
        )
        instruction.refresh_from_db()
        return Response(InstructionSerializer(instruction).data)

    @extend_schema(request=TagsSerializer, responses=InstructionSerializer)
    @action(detail=True, methods=["post"])
    def tags(self, request, pk=None):
        """Replace a phrasing's tags, in any status: its author or a curator. Nothing is scored again."""
        instruction = access.get_instruction_for_user(request.user, self._pk())
        chosen = TagsSerializer(data=request.data)
        chosen.is_valid(raise_exception=True)
        services.instruction_tag(instruction=instruction, tags=chosen.validated_data["tags"], by=request.user)
        return Response(InstructionSerializer(instruction).data)

    @extend_schema(request=DraftSerializer, responses=CheckSerializer)
    @action(detail=False, methods=["post"])
    def check(self, request):
        """Validate a draft for its task and list the task's most similar phrasings; nothing is saved."""
        draft = DraftSerializer(data=request.data)
        draft.is_valid(raise_exception=True)
        task, template = draft.validated_data["task"], draft.validated_data["template"]
        result = templating.validate(template, task.template_fields(), max_chars=settings.TEMPLATE_MAX_CHARS)
        labels = draft.validated_data.get("labels")
        if labels is not None:
            result.errors += services.label_errors(task, labels)
        similar = similarity.Neighbours()
        if template.strip():
            similar = similarity.similar_phrasings(task=task, template=template, user=request.user)
        data = {
            "valid": result.ok,
            "errors": result.errors,
            "warnings": result.warnings,
            "similar": similar,
            "pending": similar.pending,
        }
        return Response(CheckSerializer(data).data)
