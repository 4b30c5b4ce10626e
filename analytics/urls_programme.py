"""Workspace routes of the programme's snapshot figures: targets with their attainment,
scorecards and quarterly business reviews (mounted under /workspace/)."""

from __future__ import annotations

from django.urls import path

from analytics import programme_views as views

app_name = "programme_figures"

urlpatterns = [
    path("targets/", views.targets_page, name="targets"),
    path("partners/<int:pk>/scorecard/", views.partner_scorecard, name="partner_scorecard"),
    path("reviews/", views.reviews_page, name="reviews"),
    path("reviews/open/", views.review_open_view, name="review_open"),
    path("reviews/<int:pk>/", views.review_page, name="review"),
    path("reviews/<int:pk>/record/", views.review_record_view, name="review_record"),
    path("reviews/<int:pk>/actions/", views.review_action_add_view, name="review_action_add"),
    path("reviews/<int:pk>/send/", views.review_send_view, name="review_send"),
    path(
        "reviews/actions/<int:pk>/done/",
        views.review_action_done_view,
        name="review_action_done",
    ),
]
