"""The API lists' order: `?ordering=` as DRF reads it, or the page's `?sort=` of the list's
FilterSet (`crm.filters.SortFilter`), which the FilterSet has already applied."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from rest_framework.filters import OrderingFilter
from rest_framework.request import Request


class ListOrdering(OrderingFilter):
    """DRF's `?ordering=`; without it, a `?sort=` the list's FilterSet applied stands instead
    of the view's default order."""

    def filter_queryset(
        self, request: Request, queryset: QuerySet[Any], view: Any
    ) -> QuerySet[Any]:
        if self.ordering_param not in request.query_params and request.query_params.get("sort"):
            return queryset
        return super().filter_queryset(request, queryset, view)
