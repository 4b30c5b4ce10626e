"""The survey page partners' contacts reach through their signed link (no sign-in)."""

from __future__ import annotations

from django.urls import path

from partners import survey_views

app_name = "survey"

urlpatterns = [
    path("<str:token>/", survey_views.survey_answer, name="answer"),
]
