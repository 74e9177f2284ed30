from django.contrib import admin
from django.urls import include, path

from collection import views as collection_views
from core import views
from evaluation import views as evaluation_views

urlpatterns = [
    path("", collection_views.benchmark_list, name="home"),
    path("b/<slug:slug>/", collection_views.benchmark_detail, name="benchmark_detail"),
    path("b/<slug:benchmark_slug>/t/<slug:task_slug>/", collection_views.task_detail, name="task_detail"),
    path("b/<slug:slug>/leaderboard/", evaluation_views.leaderboard, name="leaderboard"),
    path(
        "b/<slug:benchmark_slug>/t/<slug:task_slug>/results/", evaluation_views.task_results, name="task_results"
    ),
    path("phrasings/<int:instruction_id>/", evaluation_views.phrasing_detail, name="phrasing_detail"),
    path("models/", evaluation_views.model_list, name="model_list"),
    path("models/<slug:name>/", evaluation_views.model_detail, name="model_detail"),
    path("models/<slug:name>/score/", evaluation_views.model_score, name="model_score"),
    path("runs/", evaluation_views.run_list, name="run_list"),
    path("runs/<int:run_id>/", evaluation_views.run_detail, name="run_detail"),
    path("runs/<int:run_id>/cancel/", evaluation_views.run_cancel, name="run_cancel"),
    path("runs/<int:run_id>/retry/", evaluation_views.run_retry, name="run_retry"),
    path("healthz", views.healthz, name="healthz"),
    path("status/", views.status, name="status"),
    path("status/ping/", views.status_ping, name="status_ping"),
    path("accounts/signup/", views.signup, name="signup"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("api/", include("core.api_urls")),
]
