"""What the lists' FilterSets share. Each list that a page and the API both show has one
django-filter FilterSet (`partners/filters.py`): the API names it as its `filterset_class`, and
the page reads its GET parameters through it with `filters_for_page`. Every FilterSet narrows a
queryset that the caller's selector has already scoped to what the asking user may see."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseRedirect
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


class TrueFalseField(forms.Field):
    """`true` or `false` (also `1`/`0`, any case); empty for no filter. Every other value is
    refused, where django-filter's own boolean widgets read it as no filter, silently."""

    widget = forms.TextInput
    default_error_messages = {"invalid": forms.ChoiceField.default_error_messages["invalid_choice"]}

    def to_python(self, value: object) -> bool | None:
        if value in (None, ""):
            return None
        text = str(value).strip().lower()
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
        raise ValidationError(
            self.error_messages["invalid"], code="invalid", params={"value": value}
        )

    def validate(self, value: object) -> None:
        """Empty is no filter, never an error."""


class TrueFalseFilter(django_filters.BooleanFilter):
    """A yes/no filter (`?name=true` or `false`) that refuses any other value: a 400 by field in
    the API and a message beside the page's filters, like every other refused value."""

    field_class = TrueFalseField


def old_bookmark_redirect(
    request: HttpRequest,
    *,
    renamed: Mapping[str, str],
    values: Mapping[str, Mapping[str, str]] | None = None,
) -> HttpResponseRedirect | None:
    """A list page's parameters as its links wrote them before its FilterSet, redirected to the
    same list under today's names, so old bookmarks keep their filters: `renamed` maps an old
    parameter name to its new one (a new name already given wins), `values` maps a parameter
    (by its new name) to its old values' new ones (`{"exclusive": {"yes": "true"}}`). None when
    the query holds nothing old."""
    query = request.GET.copy()
    changed = False
    for old, new in renamed.items():
        if old in query:
            given = query.pop(old)
            if new not in query:
                query.setlist(new, given)
            changed = True
    for name, mapping in (values or {}).items():
        given = query.getlist(name)
        mapped = [mapping.get(value.strip(), value) for value in given]
        if mapped != given:
            query.setlist(name, mapped)
            changed = True
    if not changed:
        return None
    return HttpResponseRedirect(request.path + ("?" + query.urlencode() if query else ""))


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
