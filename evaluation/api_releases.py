"""Dataset releases through the API (docs/releases.md): admins ask for one (a worker writes it into
RELEASES_DIR), anyone lists the finished ones and downloads their files. The files are what `manage.py
export_release` writes; evaluation/releases/export_jobs.py queues and runs the export."""

from __future__ import annotations

from django.http import FileResponse, Http404
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.response import Response
from rest_framework.views import APIView

from core import roles
from core.errors import ApplicationError
from core.parsing import parse_id
from evaluation import access
from evaluation.models import ReleaseExport
from evaluation.releases import export_jobs
from evaluation.releases.export import DEFAULT_LICENSE


class IsAdminToExport(permissions.BasePermission):
    message = "Only admins can ask for or delete a dataset release."

    def has_permission(self, request, view):
        return request.method in permissions.SAFE_METHODS or roles.can_export_releases(request.user)


class AnyAccept(DefaultContentNegotiation):
    """A file download answers whatever its client accepts (Accept: application/octet-stream included)."""

    def select_renderer(self, request, renderers, format_suffix=None):
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except NotAcceptable:
            return renderers[0], renderers[0].media_type


class ReleaseFileSerializer(serializers.Serializer):
    path = serializers.CharField()
    bytes = serializers.IntegerField(allow_null=True, help_text="null: listed, but gone from this server.")
    sha256 = serializers.CharField(allow_null=True, help_text="As SHA256SUMS gives it (null for that file).")
    url = serializers.CharField(help_text="Downloads the file.")


class ReleaseSerializer(serializers.ModelSerializer):
    directory = serializers.CharField(read_only=True, help_text="<name>-<version>: the dataset's directory.")
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = ReleaseExport
        fields = [
            "id",
            "name",
            "version",
            "directory",
            "benchmarks",
            "license",
            "status",
            "error",
            "counts",
            "data_version",
            "created_at",
            "started_at",
            "finished_at",
            "created_by",
        ]


class ReleaseDetailSerializer(ReleaseSerializer):
    files = serializers.SerializerMethodField(
        help_text="A finished release's files, as SHA256SUMS lists them."
    )

    class Meta(ReleaseSerializer.Meta):
        fields = [*ReleaseSerializer.Meta.fields, "files"]

    @extend_schema_field(ReleaseFileSerializer(many=True))
    def get_files(self, export: ReleaseExport) -> list[dict]:
        request = self.context.get("request")
        files = []
        for entry in export_jobs.release_files(export):
            url = reverse("releaseexport-file", args=[export.pk, entry["path"]])
            files.append(entry | {"url": request.build_absolute_uri(url) if request else url})
        return files


class ReleaseCreateSerializer(serializers.Serializer):
    benchmarks = serializers.ListField(
        child=serializers.SlugField(), default=list, help_text="Benchmark slugs; empty: every benchmark."
    )
    name = serializers.CharField(default="phrasebench", max_length=100)
    version = serializers.CharField(
        default="", allow_blank=True, max_length=100, help_text="Blank: the UTC time, 20250130T120000Z."
    )
    license = serializers.CharField(
        default=DEFAULT_LICENSE, max_length=100, help_text="A Hugging Face license id, e.g. cc-by-4.0."
    )


class ReleaseViewSet(mixins.CreateModelMixin, mixins.DestroyModelMixin, viewsets.ReadOnlyModelViewSet):
    """Dataset releases (Hugging Face Parquet layout, docs/releases.md). GET lists the finished ones (admins
    see every export, queued and failed ones too); `<id>/` gives one with its files, and `<id>/files/<path>`
    downloads a file (ReleaseFileView). POST (admins) asks for a release: 202 with the export, which a worker
    writes; its `status` says when it is done. A name and version asked for already are refused (409). DELETE
    `<id>/` (admins) removes a finished export and its files (204); one queued or running is refused (409)."""

    queryset = ReleaseExport.objects.none()  # for the schema; requests read get_queryset
    serializer_class = ReleaseSerializer
    permission_classes = [IsAdminToExport]

    def get_queryset(self):
        return access.releases_visible_to(self.request.user)

    def get_object(self):
        export_id = parse_id(self.kwargs["pk"])
        export = self.get_queryset().filter(pk=export_id).first() if export_id is not None else None
        if export is None:
            raise Http404("Not found.")
        return export

    def get_serializer_class(self):
        if self.action == "create":
            return ReleaseCreateSerializer  # what the browsable API's form asks for
        return ReleaseDetailSerializer if self.action == "retrieve" else ReleaseSerializer

    @extend_schema(request=ReleaseCreateSerializer, responses={202: ReleaseSerializer})
    def create(self, request, *args, **kwargs):
        given = ReleaseCreateSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        export = export_jobs.release_export_request(**given.validated_data, by=request.user)
        body = ReleaseSerializer(export, context=self.get_serializer_context()).data
        url = request.build_absolute_uri(reverse("releaseexport-detail", args=[export.pk]))
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": url})

    def perform_destroy(self, instance):
        export_jobs.release_export_delete(instance)


class ReleaseFileView(APIView):
    """One file of a finished release, as SHA256SUMS lists it (streamed from disk), at
    /api/releases/<id>/files/<path>: the URL ends in the file's name, so `curl -O` and `wget` save it under
    that name."""

    permission_classes = [permissions.AllowAny]
    content_negotiation_class = AnyAccept

    @extend_schema(
        parameters=[OpenApiParameter("id", int, OpenApiParameter.PATH, description="The release's id.")],
        responses={(200, "application/octet-stream"): bytes},
        operation_id="releases_files_retrieve",
    )
    def get(self, request, pk: str, path: str):
        export_id = parse_id(pk)
        visible = access.releases_visible_to(request.user)
        export = visible.filter(pk=export_id).first() if export_id is not None else None
        if export is None:
            raise Http404("Not found.")
        try:
            found = export_jobs.release_file(export, path)
        except ApplicationError as exc:
            raise Http404(str(exc)) from None
        return FileResponse(found.open("rb"), as_attachment=True, filename=found.name)


class ReleaseFileSlashView(ReleaseFileView):
    """The same, at the URL with a trailing slash that the first releases listed (not in the schema)."""

    schema = None
