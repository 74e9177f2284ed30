from django.urls import include, path
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
    path("", include(router.urls)),
]
