from __future__ import annotations

from django.contrib import admin

from crm.models import Account, AuditEvent, OutboundEmail, Region, Vertical


@admin.register(Region)
class RegionAdmin(admin.ModelAdmin[Region]):
    list_display = ["code", "name", "parent"]
    search_fields = ["code", "name"]


@admin.register(Vertical)
class VerticalAdmin(admin.ModelAdmin[Vertical]):
    list_display = ["code", "name"]
    search_fields = ["code", "name"]


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

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: object, obj: object = None) -> bool:
        return False
