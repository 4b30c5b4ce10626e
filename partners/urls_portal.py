from __future__ import annotations

from django.urls import path

from partners import partner_views, portal_views

app_name = "portal"

urlpatterns = [
    path("", portal_views.portal_home, name="home"),
    path("agreements/", portal_views.portal_agreements, name="agreements"),
    path(
        "agreements/<int:pk>/document/",
        portal_views.portal_agreement_document,
        name="agreement_document",
    ),
    path("accounts/", portal_views.portal_accounts, name="accounts"),
    path("feedback/", portal_views.portal_feedback_list, name="feedback_list"),
    path("feedback/new/", portal_views.portal_feedback_new, name="feedback_new"),
    path("feedback/<int:pk>/", portal_views.portal_feedback_detail, name="feedback_detail"),
    path(
        "feedback/<int:pk>/attachment/",
        portal_views.portal_feedback_attachment,
        name="feedback_attachment",
    ),
    path("profile/", portal_views.portal_profile, name="profile"),
    path("profile/tokens/revoke/", portal_views.portal_revoke_tokens, name="revoke_tokens"),
    path(
        "invitation/<str:uidb64>/<str:token>/", partner_views.portal_invitation, name="invitation"
    ),
]
