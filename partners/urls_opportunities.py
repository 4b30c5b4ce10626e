"""Workspace routes of opportunities (mounted under /workspace/)."""

from __future__ import annotations

from django.urls import path

from partners import opportunity_views as views

app_name = "opportunities"

urlpatterns = [
    path("opportunities/", views.opportunity_list, name="list"),
    path("opportunities/board/", views.opportunity_board, name="board"),
    path("opportunities/new/", views.opportunity_new, name="new"),
    path("opportunities/<int:pk>/", views.opportunity_detail, name="detail"),
    path("opportunities/<int:pk>/<slug:action>/", views.opportunity_action, name="action"),
]
