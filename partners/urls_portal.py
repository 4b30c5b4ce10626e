from __future__ import annotations

from django.urls import path

from partners import views

app_name = "portal"

urlpatterns = [
    path("", views.portal_home, name="home"),
]
