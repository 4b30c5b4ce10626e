from __future__ import annotations

from django.urls import path

from analytics import views

app_name = "analytics"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("export/<slug:table>.csv", views.dashboard_export, name="dashboard_export"),
    path("digest/", views.digest_preview, name="digest_preview"),
    path("partners/<int:pk>/health/", views.partner_health, name="partner_health"),
]
