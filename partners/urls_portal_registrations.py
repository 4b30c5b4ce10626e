"""Portal routes of deal registrations (mounted under /portal/)."""

from __future__ import annotations

from django.urls import path

from partners import registration_portal_views as views

app_name = "portal_registrations"

urlpatterns = [
    path("registrations/", views.portal_registration_list, name="list"),
    path("registrations/new/", views.portal_registration_new, name="new"),
    path("registrations/<int:pk>/", views.portal_registration_detail, name="detail"),
    path("registrations/<int:pk>/withdraw/", views.portal_registration_withdraw, name="withdraw"),
    path("registrations/<int:pk>/extend/", views.portal_registration_extend, name="extend"),
]
