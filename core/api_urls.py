from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from collection import api as collection_api
from evaluation import api as evaluation_api
from evaluation import api_plans, api_releases, api_snapshots

router = DefaultRouter()
router.register("benchmarks", collection_api.BenchmarkViewSet)
router.register("tasks", collection_api.TaskViewSet)
router.register("instructions", collection_api.InstructionViewSet, basename="instruction")
router.register("models", evaluation_api.ModelViewSet)
router.register("runs", evaluation_api.RunViewSet)
router.register("results", evaluation_api.ResultViewSet)
router.register("plans", api_plans.PlanViewSet)
router.register("snapshots", api_snapshots.SnapshotViewSet, basename="snapshot")
router.register("releases", api_releases.ReleaseViewSet, basename="releaseexport")

urlpatterns = [
    path("leaderboard/", evaluation_api.leaderboard, name="api_leaderboard"),
    path("compare/", evaluation_api.compare, name="api_compare"),
    path("schema/", SpectacularAPIView.as_view(), name="api_schema"),
    # The split view serves its start-up script as a file: the Content-Security-Policy forbids inline scripts.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api_schema"), name="api_docs"),
    # A release's file, at a URL that ends in its name (the router would add a slash, which `curl -O` and `wget`
    # cannot name a file after); the form with a slash that the first releases listed is still served.
    re_path(
        r"^releases/(?P<pk>[^/.]+)/files/(?P<path>[A-Za-z0-9._/-]+?)/$",
        api_releases.ReleaseFileSlashView.as_view(),
        name="releaseexport-file-slash",
    ),
    re_path(
        r"^releases/(?P<pk>[^/.]+)/files/(?P<path>[A-Za-z0-9._/-]+)$",
        api_releases.ReleaseFileView.as_view(),
        name="releaseexport-file",
    ),
    path("", include(router.urls)),
]
