"""The API lists' order: `?ordering=` as DRF reads it, or the page's `?sort=` of the list's
FilterSet (`crm.filters.SortFilter`), which the FilterSet has already applied."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from django.db.models import Model, QuerySet
from rest_framework.filters import OrderingFilter
from rest_framework.request import Request

if TYPE_CHECKING:
    from rest_framework.views import APIView

_M = TypeVar("_M", bound=Model)
_R = TypeVar("_R")


class ListOrdering(OrderingFilter):
    """DRF's `?ordering=`; without it, a `?sort=` the list's FilterSet applied stands instead
    of the view's default order."""

    def filter_queryset(
        self, request: Request, queryset: QuerySet[_M, _R], view: APIView
    ) -> QuerySet[_M, _R]:
        if self.ordering_param not in request.query_params and request.query_params.get("sort"):
            return queryset
        return super().filter_queryset(request, queryset, view)
