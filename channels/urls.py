from __future__ import annotations

from django.urls import path

from channels import views

app_name = "channels"

urlpatterns = [
    path("reps/", views.rep_list, name="rep_list"),
]
