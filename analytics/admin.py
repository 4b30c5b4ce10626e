"""Read-only admin for metric runs and snapshots: they are written by `compute_metrics` only."""

from __future__ import annotations

from typing import TypeVar

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest

from analytics.models import MetricsLock, MetricsRun, PartnerSnapshot, SegmentSnapshot

_M = TypeVar("_M", bound=Model)


class ReadOnlyAdmin(admin.ModelAdmin[_M]):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(MetricsRun)
class MetricsRunAdmin(ReadOnlyAdmin[MetricsRun]):
    list_display = [
        "week",
        "final",
        "status",
        "started_at",
        "finished_at",
        "rows_written",
        "seconds",
    ]
    list_filter = ["status", "final"]
    search_fields = ["week"]


@admin.register(SegmentSnapshot)
class SegmentSnapshotAdmin(ReadOnlyAdmin[SegmentSnapshot]):
    list_display = [
        "week",
        "region",
        "vertical",
        "size_band",
        "accounts",
        "covered_any",
        "converted",
    ]
    list_filter = ["final", "size_band"]
    search_fields = ["week", "region", "vertical"]


@admin.register(PartnerSnapshot)
class PartnerSnapshotAdmin(ReadOnlyAdmin[PartnerSnapshot]):
    list_display = ["week", "external_id", "name", "covered_accounts", "agreements_in_force", "nps"]
    list_filter = ["final", "channel_kind"]
    search_fields = ["week", "external_id", "name"]
    raw_id_fields = ["partner"]


@admin.register(MetricsLock)
class MetricsLockAdmin(admin.ModelAdmin[MetricsLock]):
    # Deleting a stuck lock is the operator's escape hatch; expiry normally makes it unneeded.
    list_display = ["name", "expires_at", "created_at"]
