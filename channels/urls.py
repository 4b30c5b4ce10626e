from __future__ import annotations

from django.urls import path

from channels import views

app_name = "channels"

urlpatterns = [
    path("accounts/", views.account_list, name="account_list"),
    path("my-accounts/", views.my_accounts, name="my_accounts"),
    path("reps/", views.rep_list, name="rep_list"),
]
