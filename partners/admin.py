from __future__ import annotations

from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from partners.models import (
    Agreement,
    Feedback,
    FeedbackNote,
    FeedbackReply,
    Partner,
    PartnerContact,
    PartnerUser,
)


class PartnerContactInline(admin.TabularInline[PartnerContact, Partner]):
    model = PartnerContact
    extra = 0


class PartnerUserInline(admin.TabularInline[PartnerUser, Partner]):
    model = PartnerUser
    extra = 0
    raw_id_fields = ["user"]


@admin.register(Partner)
class PartnerAdmin(admin.ModelAdmin[Partner]):
    list_display = ["external_id", "name", "channel_kind", "partner_type", "tier", "is_active"]
    list_filter = ["channel_kind", "partner_type", "tier", "is_active"]
    search_fields = ["external_id", "name"]
    inlines = [PartnerContactInline, PartnerUserInline]


@admin.register(Agreement)
class AgreementAdmin(SimpleHistoryAdmin):
    list_display = [
        "external_id",
        "partner",
        "agreement_type",
        "status",
        "start_date",
        "end_date",
        "exclusive",
    ]
    list_filter = ["status", "agreement_type", "exclusive"]
    search_fields = ["external_id", "partner__name"]
    raw_id_fields = ["partner", "renews"]
    filter_horizontal = ["regions", "verticals"]


class FeedbackReplyInline(admin.StackedInline[FeedbackReply, Feedback]):
    model = FeedbackReply
    extra = 0
    raw_id_fields = ["author"]


class FeedbackNoteInline(admin.StackedInline[FeedbackNote, Feedback]):
    model = FeedbackNote
    extra = 0
    raw_id_fields = ["author"]


@admin.register(Feedback)
class FeedbackAdmin(admin.ModelAdmin[Feedback]):
    list_display = ["subject", "partner", "category", "satisfaction", "nps", "status", "created_at"]
    list_filter = ["status", "category", "satisfaction"]
    search_fields = ["subject", "partner__name"]
    raw_id_fields = ["partner", "submitted_by", "logged_by", "assignee"]
    inlines = [FeedbackReplyInline, FeedbackNoteInline]
