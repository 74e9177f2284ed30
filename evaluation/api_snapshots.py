"""Citable leaderboard snapshots through the API, and the one place that freezes one (docs/snapshots.md).

A snapshot keeps what the leaderboard API answers, so freezing asks the API's own view (evaluation/api.py's
`leaderboard`) with an internal GET request: whatever that answer carries today, or gains tomorrow, a new
snapshot carries too, byte for byte. That is why freezing lives beside the API rather than in
evaluation/leaderboards/snapshots.py, which stores and reads snapshots: the leaderboards package may not
import the API (the import contracts in pyproject.toml). The page (evaluation/views/snapshots.py) and the
`snapshot_leaderboard` command freeze through `snapshot_freeze` here.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse, QueryDict
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from collection.models import Benchmark
from core.errors import ApplicationError, Conflict
from evaluation import api as evaluation_api
from evaluation.leaderboards import selectors, snapshots
from evaluation.models import LeaderboardSnapshot, PhrasingSet

# The data may change while the API answers (a scoring run's figures land): the answer is kept only when the
# data version is the same before and after it, asked again up to this many times.
FREEZE_ATTEMPTS = 3


def _internal_host() -> str:
    """A host name ALLOWED_HOSTS accepts, for the internal request (the API's cache keys read it)."""
    for host in settings.ALLOWED_HOSTS:
        if host == "*":
            return "localhost"
        if host.lstrip("."):
            return host.lstrip(".")
    return "localhost"


def leaderboard_answer(query: dict[str, str]) -> bytes:
    """The leaderboard API's JSON answer to `query`, as its view gives it to any anonymous client."""
    request = HttpRequest()
    request.method = "GET"
    request.path = request.path_info = reverse("api_leaderboard")
    request.GET = QueryDict(urlencode(query))
    request.META = {
        "QUERY_STRING": urlencode(query),
        "HTTP_ACCEPT": "application/json",
        "HTTP_HOST": _internal_host(),
        "SERVER_PORT": "80",
    }
    response = evaluation_api.leaderboard(request)
    if not getattr(response, "is_rendered", True):
        response.render()
    if response.status_code != 200:
        data = getattr(response, "data", None)
        detail = data.get("detail") if isinstance(data, dict) else None
        raise ApplicationError(f"The leaderboard API refused the view: {detail or response.status_code}")
    return response.content


def snapshot_freeze(
    *, benchmark: Benchmark, view: snapshots.View, by=None, title: str = "", note: str = ""
) -> tuple[LeaderboardSnapshot, bool]:
    """Freeze the leaderboard API's answer for `view` of `benchmark` now: (the snapshot, whether it is new;
    an unchanged answer finds the snapshot already made)."""
    for _ in range(FREEZE_ATTEMPTS):
        before = selectors.leaderboard_version(benchmark)
        answer = leaderboard_answer(view.query(benchmark.slug))
        if selectors.leaderboard_version(benchmark) == before:
            return snapshots.snapshot_create(
                benchmark=benchmark,
                view=view,
                payload=answer,
                data_version=before,
                by=by,
                title=title,
                note=note,
            )
    raise Conflict("The leaderboard's figures are being refreshed right now; freeze it again in a moment.")


class SnapshotSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="public_id", read_only=True)
    url = serializers.SerializerMethodField(help_text="The snapshot's permanent page.")
    leaderboard_url = serializers.SerializerMethodField(
        help_text="The frozen answer of /api/leaderboard/, byte for byte as it was given (its SHA-256 is sha256)."
    )
    benchmark = serializers.CharField(source="benchmark_slug", read_only=True)
    view = serializers.SerializerMethodField(help_text="The leaderboard API query whose answer is frozen.")
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = LeaderboardSnapshot
        fields = [
            "id",
            "url",
            "leaderboard_url",
            "benchmark",
            "benchmark_name",
            "view",
            "data_version",
            "sha256",
            "title",
            "note",
            "created_at",
            "created_by",
        ]

    def _absolute(self, path: str) -> str:
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path

    def get_url(self, snapshot) -> str:
        return self._absolute(snapshot.get_absolute_url())

    def get_leaderboard_url(self, snapshot) -> str:
        return self._absolute(reverse("snapshot-leaderboard", args=[snapshot.public_id]))

    def get_view(self, snapshot) -> dict:
        return snapshots.view_of(snapshot).query(snapshot.benchmark_slug)


class SnapshotDetailSerializer(SnapshotSerializer):
    leaderboard = serializers.SerializerMethodField(help_text="The frozen answer of /api/leaderboard/.")

    class Meta(SnapshotSerializer.Meta):
        fields = [*SnapshotSerializer.Meta.fields, "leaderboard"]

    def get_leaderboard(self, snapshot) -> dict:
        return snapshot.leaderboard()


class SnapshotCreateSerializer(serializers.Serializer):
    benchmark = serializers.SlugField(help_text="Benchmark slug, e.g. mmlu")
    set = serializers.ChoiceField(choices=PhrasingSet.values, default=PhrasingSet.ALL)
    kind = serializers.CharField(default="", allow_blank=True, max_length=20)
    sort = serializers.CharField(default="avgp", max_length=40)
    dir = serializers.ChoiceField(choices=["asc", "desc"], default="desc")
    partial = serializers.BooleanField(default=False)
    title = serializers.CharField(default="", allow_blank=True, max_length=snapshots.TITLE_MAX)
    note = serializers.CharField(default="", allow_blank=True, max_length=snapshots.NOTE_MAX)


class SnapshotViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Citable leaderboard snapshots. POST (any signed-in user, session or token) freezes the leaderboard
    API's answer for a view (benchmark, set, kind, sort, dir, partial) under a permanent id: 201 with the new
    snapshot, or 200 with the one already made when the answer is unchanged. GET `<id>/` gives it with the
    frozen answer (`leaderboard`), `<id>/leaderboard/` the frozen answer alone, byte for byte as the API gave
    it, and `<id>/diff/<other id>/` what changed from it to another snapshot of its benchmark."""

    queryset = LeaderboardSnapshot.objects.none()  # for the schema; requests read get_queryset
    serializer_class = SnapshotSerializer
    lookup_field = "public_id"
    lookup_url_kwarg = "snapshot_id"

    def get_queryset(self):
        benchmark = self.request.query_params.get("benchmark")
        return snapshots.snapshot_list(benchmark_slug=benchmark or None)

    def get_object(self):
        return snapshots.snapshot_get(self.kwargs["snapshot_id"])

    def get_serializer_class(self):
        if self.action == "create":
            return SnapshotCreateSerializer  # what the browsable API's form asks for
        return SnapshotDetailSerializer if self.action == "retrieve" else SnapshotSerializer

    @extend_schema(
        parameters=[OpenApiParameter("benchmark", OpenApiTypes.STR, description="Only this benchmark's")]
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(
        request=SnapshotCreateSerializer, responses={201: SnapshotSerializer, 200: SnapshotSerializer}
    )
    def create(self, request, *args, **kwargs):
        given = SnapshotCreateSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        benchmark = Benchmark.objects.filter(slug=data["benchmark"]).first()
        if benchmark is None:
            raise ApplicationError(f"There is no benchmark {data['benchmark']!r}.")
        view = snapshots.view_from_params(benchmark, data)
        snapshot, created = snapshot_freeze(
            benchmark=benchmark, view=view, by=request.user, title=data["title"], note=data["note"]
        )
        body = SnapshotSerializer(snapshot, context=self.get_serializer_context()).data
        return Response(
            body,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
            headers={"Location": body["url"]},
        )

    @extend_schema(responses={(200, "application/json"): OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"])
    def leaderboard(self, request, snapshot_id=None):
        snapshot = self.get_object()
        return HttpResponse(snapshot.payload.encode("utf-8"), content_type="application/json")

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "other_id", OpenApiTypes.STR, OpenApiParameter.PATH, description="The other snapshot"
            )
        ],
        responses=OpenApiTypes.OBJECT,
    )
    @action(detail=True, methods=["get"], url_path=r"diff/(?P<other_id>[^/.]+)")
    def diff(self, request, snapshot_id=None, other_id=None):
        """What changed from this snapshot to the other (evaluation/stats/snapshot_diff.py's RULE)."""
        old = self.get_object()
        new = snapshots.snapshot_get(other_id)
        changes = snapshots.snapshots_diff(old, new)
        return Response({"from": old.public_id, "to": new.public_id, **changes.as_dict()})
