"""Pagination that stays fast on a million rows."""

from __future__ import annotations

from functools import cached_property
from typing import Any, TypeVar

from django.core.paginator import Paginator
from django.db.models import Model, QuerySet
from django.http import QueryDict

_M = TypeVar("_M", bound=Model)

COUNT_CAP = 10_000


class CappedPaginator(Paginator[_M]):
    """Counts at most COUNT_CAP rows, so a broad filter never counts a million rows per request.

    Past the cap the page shows "10,000+" and the last page number is the cap's; narrowing the
    filter gives the exact figure.
    """

    def __init__(
        self, object_list: QuerySet[_M], per_page: int, cap: int = COUNT_CAP, **kwargs: Any
    ) -> None:
        super().__init__(object_list, per_page, **kwargs)
        self.rows = object_list
        self.cap = cap

    @cached_property
    def count(self) -> int:
        # Count bare ids: the page's ordering and joins only slow the count down.
        return min(self.rows.order_by().values("pk")[: self.cap + 1].count(), self.cap + 1)

    @property
    def capped(self) -> bool:
        return self.count > self.cap


def list_queries(params: QueryDict) -> dict[str, str]:
    """The query strings a list page links with: `querystring` (everything but the page, for
    page links and exports) and `sort_query` (nor the order, for the column links, which add
    their own `sort=`, so a click replaces the order instead of appending another)."""
    query = params.copy()
    query.pop("page", None)
    querystring = query.urlencode()
    query.pop("sort", None)
    return {"querystring": querystring, "sort_query": query.urlencode()}


def capped_count(rows: QuerySet[Any], cap: int = COUNT_CAP) -> tuple[int, bool]:
    """How many rows, counted no further than `cap` as the lists count them: (count, capped),
    where a capped count is "more than `cap`". A count on a page that links to a list names
    what that list will show."""
    counted = rows.order_by().values("pk")[: cap + 1].count()
    return min(counted, cap), counted > cap
