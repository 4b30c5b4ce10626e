"""The partner's scorecard in the portal (mounted under /portal/)."""

from __future__ import annotations

from django.urls import path

from analytics import programme_views as views

app_name = "portal_scorecard"

urlpatterns = [
    path("scorecard/", views.portal_scorecard, name="scorecard"),
]
