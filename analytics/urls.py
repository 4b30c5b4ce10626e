from __future__ import annotations

from django.urls import path

from analytics import views

app_name = "analytics"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("partners/<int:pk>/health/", views.partner_health, name="partner_health"),
]
