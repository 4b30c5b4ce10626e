"""Reference data of the market core: regions and verticals (read only)."""

from __future__ import annotations

from django.db.models import QuerySet
from rest_framework import filters, viewsets

from crm.api.permissions import InternalReadManagerWrite
from crm.api.serializers import RegionSerializer, VerticalSerializer
from crm.models import Region, Vertical
from crm.selectors import regions_all, verticals_all


class RegionViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = RegionSerializer
    permission_classes = [InternalReadManagerWrite]
    filter_backends = [filters.SearchFilter, filters.OrderingFilter]
    search_fields = ["code", "name"]
    ordering_fields = ["code", "name"]
    ordering = ["name"]

    def get_queryset(self) -> QuerySet[Region]:
        return regions_all().select_related("parent")


class VerticalViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = VerticalSerializer
    permission_classes = [InternalReadManagerWrite]
    filter_backends = [filters.SearchFilter, filters.OrderingFilter]
    search_fields = ["code", "name"]
    ordering_fields = ["code", "name"]
    ordering = ["name"]

    def get_queryset(self) -> QuerySet[Vertical]:
        return verticals_all()
