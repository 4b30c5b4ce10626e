"""What the lists' FilterSets share. Each list that a page and the API both show has one
django-filter FilterSet (`partners/filters.py`): the API names it as its `filterset_class`, and
the page reads its GET parameters through it with `filters_for_page`. Every FilterSet narrows a
queryset that the caller's selector has already scoped to what the asking user may see."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import django_filters
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from crm.forms import object_id

FilterSetT = TypeVar("FilterSetT", bound=django_filters.FilterSet)


class SortFilter(django_filters.ChoiceFilter):
    """`?sort=KEY`, one of a list's orders (each a tuple of `order_by` fields ending in one that
    is unique, so pages never shuffle); no key sorts by `default`."""

    def __init__(self, orders: Mapping[str, tuple[str, ...]], *, default: str, **kwargs: Any):
        self.orders = dict(orders)
        self.default = default
        kwargs.setdefault("label", _("Order"))
        super().__init__(choices=[(key, key) for key in self.orders], **kwargs)

    def filter(self, qs: QuerySet[Any], value: Any) -> QuerySet[Any]:
        return qs.order_by(*self.orders[value or self.default])


class IdFilter(django_filters.CharFilter):
    """`?name=ID` of a related row: an id that is no number, or that the caller may not see,
    finds nothing, exactly like one that does not exist (nobody learns which ids exist)."""

    def filter(self, qs: QuerySet[Any], value: Any) -> QuerySet[Any]:
        if value in ("", None):
            return qs
        pk = object_id(value)
        return qs.filter(**{f"{self.field_name}_id": pk}) if pk else qs.none()


def filters_for_page(
    filterset_class: type[FilterSetT],
    request: HttpRequest,
    *,
    queryset: QuerySet[Any],
    defaults: Mapping[str, str] | None = None,
) -> tuple[FilterSetT, dict[str, str]]:
    """The list's FilterSet bound to the page's GET parameters (`defaults` for those absent),
    and the parameters as the page's filter form shows them. A value the FilterSet refuses is
    left out of the rows (the other filters still apply) and blank in the form; the page shows
    `filterset.errors` beside it."""
    data = {
        name: request.GET.get(name, "").strip()
        for name in filterset_class.base_filters
        if name in request.GET
    }
    for name, value in (defaults or {}).items():
        data.setdefault(name, value)
    filterset = filterset_class(data, queryset=queryset, request=request)
    filterset.is_valid()
    params = {name: data.get(name, "") for name in filterset_class.base_filters}
    for name in filterset.errors:
        params[name] = ""
    sort = filterset.filters.get("sort")
    if isinstance(sort, SortFilter):
        params["sort"] = params["sort"] or sort.default
    return filterset, params
