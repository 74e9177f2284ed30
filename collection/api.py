"""Read-only API for benchmarks, tasks and approved phrasings (authoring through the API comes with the
authoring issue)."""

from __future__ import annotations

import django_filters
from rest_framework import serializers, viewsets

from collection.models import Benchmark, Instruction, Task


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
            "id", "benchmark", "slug", "name", "description", "kind", "answer_format", "input_fields",
            "label_space", "max_options", "parent", "eval_sample_size", "eval_sample_seed", "source",
        ]


class InstructionSerializer(serializers.ModelSerializer):
    task = serializers.PrimaryKeyRelatedField(read_only=True)
    collection = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    author = serializers.SlugRelatedField(slug_field="username", read_only=True)
    template = serializers.CharField(source="current_revision.template", read_only=True)
    labels = serializers.JSONField(source="current_revision.labels", read_only=True)
    revision = serializers.IntegerField(source="current_revision_id", read_only=True)

    class Meta:
        model = Instruction
        fields = [
            "id", "task", "collection", "author", "source", "external_id", "text_available", "status", "revision",
            "template", "labels",
        ]


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

    class Meta:
        model = Instruction
        fields = ["task", "collection"]


class InstructionViewSet(viewsets.ReadOnlyModelViewSet):
    """Approved phrasings (the ones every model is scored on)."""

    queryset = (
        Instruction.objects.filter(status=Instruction.Status.APPROVED)
        .select_related("collection", "author", "current_revision")
        .order_by("id")
    )
    serializer_class = InstructionSerializer
    filterset_class = InstructionFilter
