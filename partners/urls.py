from __future__ import annotations

from django.urls import path

from partners import views

app_name = "partners"

urlpatterns = [
    path("partners/", views.partner_list, name="partner_list"),
    path("distributors/", views.distributor_list, name="distributor_list"),
    path("partners/<int:pk>/", views.partner_detail, name="partner_detail"),
    path("agreements/", views.agreement_list, name="agreement_list"),
    path("agreements/<int:pk>/", views.agreement_detail, name="agreement_detail"),
    path("feedback/", views.feedback_list, name="feedback_list"),
]
