from __future__ import annotations

from django.contrib import admin

from channels.models import CoverageAssignment, SalesRep


@admin.register(SalesRep)
class SalesRepAdmin(admin.ModelAdmin[SalesRep]):
    list_display = ["external_id", "name", "email", "user", "is_active"]
    search_fields = ["external_id", "name", "email"]
    filter_horizontal = ["regions"]
    raw_id_fields = ["user"]


@admin.register(CoverageAssignment)
class CoverageAssignmentAdmin(admin.ModelAdmin[CoverageAssignment]):
    list_display = ["account", "kind", "owner_label", "start_date", "end_date"]
    list_filter = ["kind"]
    search_fields = ["=account__external_id", "online_source"]
    raw_id_fields = ["account", "rep", "partner"]
    list_select_related = ["account", "rep", "partner"]
    show_full_result_count = False
