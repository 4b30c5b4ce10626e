from __future__ import annotations

from typing import Any, TypeVar

from django.contrib import admin
from django.db.models import Model, QuerySet
from django.forms import ModelForm
from django.http import HttpRequest
from simple_history.admin import SimpleHistoryAdmin

from partners.coverage_kinds import coverage_kinds_refresh_partner
from partners.models import (
    Agreement,
    Feedback,
    FeedbackNote,
    FeedbackReply,
    Partner,
    PartnerContact,
    PartnerUser,
)
from partners.registration_models import DealRegistration, DealRegistrationEvent
from partners.webhook_models import WebhookDelivery

_M = TypeVar("_M", bound=Model)


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

    # Edits here bypass the agreement services: refresh the partner's accounts' coverage kinds
    # once the regions and verticals are saved too (and the former partner's, if it changed).
    def save_model(
        self, request: HttpRequest, obj: Agreement, form: ModelForm[Any], change: bool
    ) -> None:
        self._partners = {obj.partner}
        if obj.pk:
            self._partners |= {p for p in Partner.objects.filter(agreements__pk=obj.pk)}
        super().save_model(request, obj, form, change)

    def save_related(
        self, request: HttpRequest, form: ModelForm[Any], formsets: Any, change: bool
    ) -> None:
        super().save_related(request, form, formsets, change)
        for partner in getattr(self, "_partners", ()):
            coverage_kinds_refresh_partner(partner=partner)

    def delete_model(self, request: HttpRequest, obj: Agreement) -> None:
        partner = obj.partner
        super().delete_model(request, obj)
        coverage_kinds_refresh_partner(partner=partner)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Agreement]) -> None:
        partners = list(Partner.objects.filter(agreements__in=queryset).distinct())
        super().delete_queryset(request, queryset)
        for partner in partners:
            coverage_kinds_refresh_partner(partner=partner)


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


class ReadOnlyAdmin(admin.ModelAdmin[_M]):
    """Deal registrations and webhook deliveries change only through their services (the
    workspace, the portal, the API), which keep their history, coverage and rules."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: _M | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: _M | None = None) -> bool:
        return False


# A tuple serves both attributes (their types differ in the stubs; a tuple fits either).
EVENT_FIELDS = (
    "created_at",
    "kind",
    "from_status",
    "to_status",
    "by",
    "note",
    "partner_visible",
)


class DealRegistrationEventInline(admin.TabularInline[DealRegistrationEvent, DealRegistration]):
    model = DealRegistrationEvent
    extra = 0
    can_delete = False
    fields = EVENT_FIELDS
    readonly_fields = EVENT_FIELDS

    def has_add_permission(self, request: HttpRequest, obj: DealRegistration | None = None) -> bool:
        return False


@admin.register(DealRegistration)
class DealRegistrationAdmin(ReadOnlyAdmin[DealRegistration]):
    list_display = ["external_id", "partner", "company_name", "status", "submitted_at"]
    list_filter = ["status", "needs_review"]
    search_fields = ["external_id", "company_name", "partner__name"]
    inlines = [DealRegistrationEventInline]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin[WebhookDelivery]):
    list_display = ["event", "endpoint", "status", "attempts", "response_status", "created_at"]
    list_filter = ["status", "event"]
