"""Workspace routes of the partner programme: tiers, tier history, certifications, targets and
surveys (mounted under /workspace/)."""

from __future__ import annotations

from django.urls import path

from partners import programme_views as views
from partners import survey_views

app_name = "programme"

urlpatterns = [
    path("programme/", views.programme_tiers, name="tiers"),
    path("programme/settings/", views.programme_settings_view, name="settings"),
    path("programme/tiers/new/", views.tier_create_view, name="tier_create"),
    path("programme/tiers/<int:pk>/edit/", views.tier_edit_view, name="tier_edit"),
    path("programme/tiers/<int:pk>/delete/", views.tier_delete_view, name="tier_delete"),
    path("programme/history/", views.tier_history, name="history"),
    path("programme/history/<int:pk>/", views.tier_change_detail, name="change"),
    path("partners/<int:pk>/programme/", views.partner_programme_card, name="partner_card"),
    path("partners/<int:pk>/tier/", views.partner_tier_view, name="partner_tier"),
    path(
        "partners/<int:pk>/certifications/",
        views.certification_add_view,
        name="certification_add",
    ),
    path(
        "certifications/<int:pk>/remove/",
        views.certification_remove_view,
        name="certification_remove",
    ),
    path("partners/<int:pk>/targets/", views.partner_target_view, name="partner_target"),
    path("targets/reps/", views.rep_target_view, name="rep_target"),
    path("targets/<int:pk>/delete/", views.target_delete_view, name="target_delete"),
    path("surveys/", survey_views.survey_list, name="surveys"),
    path("surveys/new/", survey_views.survey_create_view, name="survey_create"),
    path("surveys/<int:pk>/", survey_views.survey_detail, name="survey_detail"),
    path("surveys/<int:pk>/edit/", survey_views.survey_edit_view, name="survey_edit"),
    path("surveys/<int:pk>/send/", survey_views.survey_send_view, name="survey_send"),
    path("surveys/waves/<int:pk>/", survey_views.wave_detail, name="wave_detail"),
]
