"""Portal routes of opportunities (mounted under /portal/)."""

from __future__ import annotations

from django.urls import path

from partners import opportunity_views as views

app_name = "portal_opportunities"

urlpatterns = [
    path("opportunities/", views.portal_opportunity_list, name="list"),
    path("opportunities/<int:pk>/", views.portal_opportunity_detail, name="detail"),
]
