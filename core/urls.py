from django.contrib import admin
from django.urls import include, path

from collection.views import curation, uploads
from core import views
from evaluation.views import authoring, browse
from evaluation.views import compare as compare_views
from evaluation.views import plans as plan_views
from evaluation.views import releases as release_views
from evaluation.views import results as evaluation_views
from evaluation.views import sampling as sampling_views
from evaluation.views import snapshots as snapshot_views
from evaluation.views import softprompts as softprompt_views

urlpatterns = [
    path("", browse.benchmark_list, name="home"),
    path("b/<slug:slug>/", browse.benchmark_detail, name="benchmark_detail"),
    path("b/<slug:benchmark_slug>/t/<slug:task_slug>/", browse.task_detail, name="task_detail"),
    path(
        "b/<slug:benchmark_slug>/t/<slug:task_slug>/instances/<int:instance_id>/",
        browse.task_instance,
        name="task_instance",
    ),
    path("b/<slug:benchmark_slug>/t/<slug:task_slug>/write/", authoring.phrasing_new, name="phrasing_new"),
    path(
        "b/<slug:benchmark_slug>/t/<slug:task_slug>/preview/",
        authoring.phrasing_preview,
        name="phrasing_preview",
    ),
    path("b/<slug:slug>/leaderboard/", evaluation_views.leaderboard, name="leaderboard"),
    path("b/<slug:slug>/compare/", compare_views.compare, name="compare"),
    path(
        "b/<slug:benchmark_slug>/t/<slug:task_slug>/results/",
        evaluation_views.task_results,
        name="task_results",
    ),
    path("phrasings/<int:instruction_id>/", evaluation_views.phrasing_detail, name="phrasing_detail"),
    path("phrasings/<int:instruction_id>/edit/", authoring.phrasing_edit, name="phrasing_edit"),
    path("me/phrasings/", authoring.my_phrasings, name="my_phrasings"),
    path("curate/", curation.queue, name="curation_queue"),
    path("curate/bulk/", curation.review_bulk, name="curation_bulk"),
    path("curate/import/", uploads.upload, name="curation_upload"),
    path("curate/<int:instruction_id>/review/", curation.review, name="curation_review"),
    path("models/", evaluation_views.model_list, name="model_list"),
    path("models/<slug:name>/", evaluation_views.model_detail, name="model_detail"),
    path("models/<slug:name>/score/", evaluation_views.model_score, name="model_score"),
    path("models/<slug:name>/check/", evaluation_views.model_check_retry, name="model_check_retry"),
    path("models/<slug:name>/align/", softprompt_views.model_align, name="model_align"),
    path("models/<slug:name>/calibrate/", softprompt_views.model_calibrate, name="model_calibrate"),
    path("softprompts/<int:soft_prompt_id>/", softprompt_views.softprompt_detail, name="softprompt_detail"),
    path(
        "softprompts/<int:soft_prompt_id>/cancel/",
        softprompt_views.softprompt_cancel,
        name="softprompt_cancel",
    ),
    path(
        "softprompts/<int:soft_prompt_id>/retry/", softprompt_views.softprompt_retry, name="softprompt_retry"
    ),
    path("runs/", evaluation_views.run_list, name="run_list"),
    path("runs/<int:run_id>/", evaluation_views.run_detail, name="run_detail"),
    path("runs/<int:run_id>/cancel/", evaluation_views.run_cancel, name="run_cancel"),
    path("runs/<int:run_id>/retry/", evaluation_views.run_retry, name="run_retry"),
    path(
        "b/<slug:benchmark_slug>/t/<slug:task_slug>/sample/", sampling_views.task_sample, name="task_sample"
    ),
    path("plans/", plan_views.plan_list, name="plan_list"),
    path("plans/<int:plan_id>/", plan_views.plan_detail, name="plan_detail"),
    path("plans/<int:plan_id>/start/", plan_views.plan_start, name="plan_start"),
    path("plans/<int:plan_id>/discard/", plan_views.plan_discard, name="plan_discard"),
    # Dataset releases (docs/releases.md); their files are served by the API.
    path("releases/", release_views.release_list, name="release_list"),
    path("releases/<str:export_id>/", release_views.release_detail, name="release_detail"),
    # Citable leaderboard snapshots (docs/snapshots.md).
    path("b/<slug:slug>/leaderboard/freeze/", snapshot_views.snapshot_new, name="snapshot_new"),
    path("b/<slug:slug>/snapshots/", snapshot_views.benchmark_snapshots, name="benchmark_snapshots"),
    path("snapshots/", snapshot_views.snapshot_list, name="snapshot_list"),
    path("snapshots/<str:snapshot_id>/", snapshot_views.snapshot_detail, name="snapshot_detail"),
    path("snapshots/<str:snapshot_id>/diff/", snapshot_views.snapshot_diff_pick, name="snapshot_diff_pick"),
    path(
        "snapshots/<str:snapshot_id>/diff/<str:other_id>/",
        snapshot_views.snapshot_diff_page,
        name="snapshot_diff",
    ),
    path("healthz", views.healthz, name="healthz"),
    path("status/", views.status, name="status"),
    path("status/ping/", views.status_ping, name="status_ping"),
    path("accounts/signup/", views.signup, name="signup"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("api/", include("core.api_urls")),
]

# A parameter that does not parse (core/parsing.py) is answered with its message on our own page.
handler400 = "core.views.bad_request"
# 404 and 500 in the site's layout, with no request context (no database); JSON under /api/.
handler404 = "core.views.page_not_found"
# 403 in the site's layout with the refusal's reason (Django's own page is bare and says nothing).
handler403 = "core.views.permission_denied"
handler500 = "core.views.server_error"
