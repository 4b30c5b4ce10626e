from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest

from channels.models import CoverageAssignment, Opportunity, OpportunitySubStage, SalesRep
from channels.services import coverage_changed


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

    # Edits here bypass the coverage services: tell the keepers of derived coverage state.
    def save_model(
        self, request: HttpRequest, obj: CoverageAssignment, form: ModelForm[Any], change: bool
    ) -> None:
        before = (
            CoverageAssignment.objects.filter(pk=obj.pk).values_list("account_id", flat=True)
            if obj.pk
            else []
        )
        super().save_model(request, obj, form, change)
        coverage_changed(account_ids={obj.account_id, *before})

    def delete_model(self, request: HttpRequest, obj: CoverageAssignment) -> None:
        super().delete_model(request, obj)
        coverage_changed(account_ids=[obj.account_id])

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[CoverageAssignment]) -> None:
        account_ids = set(queryset.values_list("account_id", flat=True))
        super().delete_queryset(request, queryset)
        coverage_changed(account_ids=account_ids)


@admin.register(OpportunitySubStage)
class OpportunitySubStageAdmin(admin.ModelAdmin[OpportunitySubStage]):
    """The open pipeline's steps: their order on the board and their win probability."""

    list_display = ["code", "name", "name_zh", "probability", "position"]
    list_editable = ["probability", "position"]
    ordering = ["position", "code"]


@admin.register(Opportunity)
class OpportunityAdmin(admin.ModelAdmin[Opportunity]):
    """Read only: deals change through the workspace, the API or the import, which keep their
    rules and history (partners.opportunity_services)."""

    list_display = ["external_id", "name", "account", "channel", "stage", "amount", "currency"]
    list_filter = ["stage", "channel", "recurring"]
    search_fields = ["=external_id", "name", "=account__external_id"]
    list_select_related = ["account"]
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Opportunity | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Opportunity | None = None) -> bool:
        return False
