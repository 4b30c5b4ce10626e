from __future__ import annotations

from django.urls import path

from analytics import home

app_name = "workspace"

urlpatterns = [
    # Each internal role's home: the page reads every app, so it lives in the top layer.
    path("", home.workspace_home, name="home"),
]
