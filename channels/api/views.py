"""Sales reps (read). The coverage API is in `partners.api.coverage_views`."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet
from rest_framework import filters, viewsets

from channels.api.serializers import SalesRepSerializer
from channels.models import SalesRep
from channels.selectors import reps_visible_to
from crm.api.permissions import InternalReadManagerWrite


class SalesRepFilter(django_filters.FilterSet):
    region = django_filters.CharFilter(field_name="regions__code", distinct=True)

    class Meta:
        model = SalesRep
        fields = ["is_active", "region"]


class SalesRepViewSet(viewsets.ReadOnlyModelViewSet[SalesRep]):
    serializer_class = SalesRepSerializer
    permission_classes = [InternalReadManagerWrite]
    filterset_class = SalesRepFilter
    filter_backends = [
        django_filters.rest_framework.DjangoFilterBackend,
        filters.SearchFilter,
        filters.OrderingFilter,
    ]
    search_fields = ["name", "external_id", "email"]
    ordering_fields = ["name", "external_id"]
    ordering = ["name"]

    def get_queryset(self) -> QuerySet[SalesRep]:
        return reps_visible_to(self.request.user).prefetch_related("regions")
