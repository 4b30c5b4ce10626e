from __future__ import annotations

from django.urls import path

from partners import (
    choice_views,
    coverage_views,
    feedback_views,
    import_views,
    partner_views,
    views,
)

app_name = "partners"

urlpatterns = [
    path("partners/", views.partner_list, name="partner_list"),
    path("distributors/", views.distributor_list, name="distributor_list"),
    path("partners/new/", partner_views.partner_create_view, name="partner_create"),
    path("partners/<int:pk>/", partner_views.partner_detail, name="partner_detail"),
    path("partners/<int:pk>/edit/", partner_views.partner_edit_view, name="partner_edit"),
    path("partners/<int:pk>/contacts/", partner_views.contact_add_view, name="contact_add"),
    path(
        "partners/<int:pk>/users/<int:user_pk>/revoke-tokens/",
        partner_views.portal_user_revoke_tokens_view,
        name="portal_user_revoke_tokens",
    ),
    path(
        "partners/<int:pk>/invite/",
        partner_views.portal_user_invite_view,
        name="portal_user_invite",
    ),
    path("agreements/", views.agreement_list, name="agreement_list"),
    path("agreements/new/", views.agreement_create, name="agreement_create"),
    path("agreements/renewals-due/", views.renewals_due, name="renewals_due"),
    path("agreements/<int:pk>/", views.agreement_detail, name="agreement_detail"),
    path("agreements/<int:pk>/edit/", views.agreement_edit, name="agreement_edit"),
    path("agreements/<int:pk>/activate/", views.agreement_activate_view, name="agreement_activate"),
    path(
        "agreements/<int:pk>/terminate/", views.agreement_terminate_view, name="agreement_terminate"
    ),
    path("agreements/<int:pk>/renew/", views.agreement_renew_view, name="agreement_renew"),
    path("agreements/<int:pk>/discard/", views.agreement_discard_view, name="agreement_discard"),
    path("agreements/<int:pk>/document/", views.agreement_document, name="agreement_document"),
    path("feedback/", feedback_views.feedback_inbox, name="feedback_list"),
    path("feedback/log/", feedback_views.feedback_log, name="feedback_log"),
    path("feedback/<int:pk>/", feedback_views.feedback_detail, name="feedback_detail"),
    path("feedback/<int:pk>/triage/", feedback_views.feedback_triage_view, name="feedback_triage"),
    path("feedback/<int:pk>/reply/", feedback_views.feedback_reply_view, name="feedback_reply"),
    path("feedback/<int:pk>/note/", feedback_views.feedback_note_view, name="feedback_note"),
    path("accounts/", coverage_views.account_list, name="account_list"),
    path("my-accounts/", coverage_views.my_accounts, name="my_accounts"),
    path("accounts/<int:pk>/", coverage_views.account_detail, name="account_detail"),
    path("coverage/assign/", coverage_views.coverage_assign_view, name="coverage_assign"),
    path("coverage/<int:pk>/end/", coverage_views.coverage_end_view, name="coverage_end"),
    path("white-space/", coverage_views.white_space, name="white_space"),
    path("choices/partners/", choice_views.partner_choices, name="partner_choices"),
    path("choices/reps/", choice_views.rep_choices, name="rep_choices"),
    path("imports/", import_views.import_upload, name="import_upload"),
    path("imports/<int:pk>/", import_views.import_job, name="import_job"),
    path(
        "imports/<int:pk>/problems.txt",
        import_views.import_job_problems,
        name="import_job_problems",
    ),
    path("imports/<int:pk>/apply/", import_views.import_job_apply_view, name="import_job_apply"),
]
