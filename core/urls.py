from django.contrib import admin
from django.urls import include, path

from collection import views as collection_views
from core import views

urlpatterns = [
    path("", collection_views.benchmark_list, name="home"),
    path("b/<slug:slug>/", collection_views.benchmark_detail, name="benchmark_detail"),
    path("b/<slug:benchmark_slug>/t/<slug:task_slug>/", collection_views.task_detail, name="task_detail"),
    path("status/", views.status, name="status"),
    path("status/ping/", views.status_ping, name="status_ping"),
    path("accounts/signup/", views.signup, name="signup"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
]
