from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.forms import ModelForm
from django.http import HttpRequest

from crm.models import (
    Account,
    ApiToken,
    AuditEvent,
    CurrencyRate,
    OutboundEmail,
    Region,
    Vertical,
)


@admin.register(Region)
class RegionAdmin(admin.ModelAdmin[Region]):
    list_display = ["code", "name", "name_zh", "parent"]
    list_editable = ["name_zh"]
    search_fields = ["code", "name", "name_zh"]


@admin.register(Vertical)
class VerticalAdmin(admin.ModelAdmin[Vertical]):
    list_display = ["code", "name", "name_zh"]
    list_editable = ["name_zh"]
    search_fields = ["code", "name", "name_zh"]


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin[Account]):
    list_display = [
        "external_id",
        "name",
        "region",
        "vertical",
        "size_band",
        "entered_on",
        "converted_on",
    ]
    list_filter = ["size_band", "converted_via", "region", "vertical"]
    search_fields = ["=external_id", "name"]
    list_select_related = ["region", "vertical"]
    # A million rows: no full count on every page, and raw ids instead of huge dropdowns.
    show_full_result_count = False
    raw_id_fields = ["region", "vertical"]
    date_hierarchy = None
    readonly_fields = ["coverage_kinds", "coverage_kinds_from", "coverage_kinds_until"]

    def save_model(
        self, request: HttpRequest, obj: Account, form: ModelForm[Any], change: bool
    ) -> None:
        if {"region", "vertical"} & set(form.changed_data):
            # Which agreements grant the account changes with its segment: its stored coverage
            # kinds are not known until the next refresh (the lists test its assignments).
            obj.coverage_kinds_from = None
        super().save_model(request, obj, form, change)


@admin.register(CurrencyRate)
class CurrencyRateAdmin(admin.ModelAdmin[CurrencyRate]):
    """Rates into the reporting currency (docs/metrics.md rule 10), typed in or imported with
    fx_rates.csv; nothing is fetched from the internet."""

    list_display = ["currency", "valid_from", "rate_to_reporting", "updated_at"]
    list_filter = ["currency"]
    search_fields = ["currency"]
    ordering = ["currency", "-valid_from"]


@admin.register(OutboundEmail)
class OutboundEmailAdmin(admin.ModelAdmin[OutboundEmail]):
    list_display = ["subject", "topic", "status", "attempts", "created_at", "sent_at"]
    list_filter = ["status", "topic"]
    readonly_fields = [
        "to",
        "subject",
        "body_text",
        "body_html",
        "attempts",
        "last_error",
        "sent_at",
        "topic",
    ]


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin[AuditEvent]):
    list_display = ["created_at", "kind", "username", "partner", "ip_address", "path"]
    list_filter = ["kind"]
    search_fields = ["username", "ip_address", "path", "request_id"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin[ApiToken]):
    """Tokens are issued through the API only (the key is shown once there); here they can be
    seen and revoked (deleted)."""

    list_display = ["prefix", "user", "created_at", "last_used_at"]
    search_fields = ["user__username", "prefix"]
    list_select_related = ["user"]
    readonly_fields = ["user", "prefix", "created_at", "last_used_at"]
    exclude = ["digest", "password_fingerprint"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ApiToken | None = None) -> bool:
        return False
