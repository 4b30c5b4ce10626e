"""The root URLconf: it names every app's routes (the wiring stands above the apps)."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from analytics import health
from crm import views

urlpatterns = [
    path("", views.home, name="home"),
    path("health/", health.health, name="health"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    # Ours, before Django's: nothing is sent from the request (crm.views.password_reset).
    path("accounts/password_reset/", views.password_reset, name="password_reset"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("workspace/", include("analytics.urls_workspace")),
    path("workspace/", include("channels.urls")),
    path("workspace/", include("partners.urls")),
    path("workspace/", include("partners.urls_registrations")),
    path("workspace/", include("partners.urls_programme")),
    path("workspace/", include("analytics.urls_programme")),
    path("workspace/", include("partners.urls_opportunities")),
    path("portal/", include("partners.urls_portal")),
    path("portal/", include("partners.urls_portal_registrations")),
    path("portal/", include("partners.urls_portal_opportunities")),
    path("portal/", include("analytics.urls_portal")),
    path("survey/", include("partners.urls_survey")),
    path("dashboard/", include("analytics.urls")),
    path("api/", include("crm.api_urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
]
