"""Workspace routes of deal registrations and webhooks (mounted under /workspace/)."""

from __future__ import annotations

from django.urls import path

from partners import registration_views as views
from partners import webhook_views

app_name = "registrations"

urlpatterns = [
    path("registrations/", views.registration_queue, name="queue"),
    path("registrations/<int:pk>/", views.registration_detail, name="detail"),
    path("registrations/<int:pk>/approve/", views.registration_approve_view, name="approve"),
    path("registrations/<int:pk>/reject/", views.registration_reject_view, name="reject"),
    path("registrations/<int:pk>/won/", views.registration_won_view, name="won"),
    path("registrations/<int:pk>/lost/", views.registration_lost_view, name="lost"),
    path("registrations/<int:pk>/extend/", views.registration_extend_view, name="extend"),
    path(
        "registrations/<int:pk>/decline-extension/",
        views.registration_decline_view,
        name="decline",
    ),
    path("registrations/<int:pk>/account/", views.registration_link_view, name="link"),
    path(
        "partners/<int:pk>/registrations/",
        views.partner_registrations,
        name="partner_registrations",
    ),
    path(
        "partners/<int:pk>/channel-manager/",
        views.partner_channel_manager,
        name="partner_channel_manager",
    ),
    path("webhooks/", webhook_views.webhook_list, name="webhooks"),
    path("webhooks/<int:pk>/", webhook_views.webhook_detail, name="webhook_detail"),
    path("webhooks/<int:pk>/toggle/", webhook_views.webhook_toggle, name="webhook_toggle"),
    path("webhooks/<int:pk>/ping/", webhook_views.webhook_ping_view, name="webhook_ping"),
    path(
        "webhooks/deliveries/<int:pk>/redeliver/",
        webhook_views.webhook_redeliver_view,
        name="webhook_redeliver",
    ),
]
