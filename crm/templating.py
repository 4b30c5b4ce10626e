"""The Jinja2 engine that renders the longest loops of the busiest pages (the rows of the
account list, the feedback inbox and the registration queue, the dashboard's heat map): Jinja2
compiles a template to Python and renders a row several times faster than Django's engine.

Pages stay Django templates. A partial written for Jinja2 (`*.jinja` beside the Django ones in
`templates/`) is included with `{% jinja "app/partials/rows.jinja" %}` (`crm.templatetags.jinja`)
and sees the including template's context. Both engines know the same filters: those of the
project's own template libraries (`money`, `label_in`, the dashboard's `as_ratio`, ...) and
Django's `date`, `localtime` and `number_format`, so a partial writes a date or a count exactly
as a page does ("5 Dec 2026" or "2026年12月5日", see crm/formats). `url("route:name", *args)`
gives a route's path; `url_by_id(name)` the paths of one route for a whole list.

Text is translated with `{{ _("...") }}` (a `%(name)s` placeholder filled with
`|format(name=...)`), which `makemessages -e html,txt,py,jinja` extracts like a Django
template's; a plural is a `ngettext_lazy` text in Python, filled with `%` in the partial.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from functools import lru_cache
from importlib import import_module
from pathlib import Path
from typing import Any

import jinja2
from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.template.backends.django import get_installed_libraries
from django.template.defaultfilters import date
from django.templatetags.tz import localtime
from django.urls import reverse
from django.utils.formats import number_format
from django.utils.translation import get_language, gettext, ngettext


@lru_cache(maxsize=8192)
def _day_text(day: datetime.date, arg: str | None, language: str | None) -> str:
    return str(date(day, arg))


def date_text(value: Any, arg: str | None = None) -> str:
    """Django's `date` filter. A calendar day's text is kept per format and language: the same
    days come back on row after row of the lists, and formatting one is most of a row's dates'
    time (a date and time is formatted afresh each time)."""
    if type(value) is datetime.date:
        return _day_text(value, arg, get_language())
    return str(date(value, arg))


@receiver(setting_changed)
def _forget_day_texts(**kwargs: Any) -> None:
    """A format or language setting changed (tests): the kept texts may no longer hold."""
    _day_text.cache_clear()


DJANGO_FILTERS: dict[str, Callable[..., Any]] = {
    "date": date_text,
    "localtime": localtime,
    "number_format": number_format,
}


def url(name: str, *args: object) -> str:
    """`{{ url("partners:account_detail", account.pk) }}`: the path of a named route."""
    return reverse(name, args=args)


# Any id the routes' `<int:pk>` accepts, replaced by the row's own.
_ID = 2**31 - 1


def url_by_id(name: str) -> Callable[[int], str]:
    """The path of a named route of one id, resolved once for a whole list:
    `{% set detail = url_by_id("registrations:detail") %}` and `{{ detail(r.pk) }}` per row.
    Reversing a route for every row was a fifth of a list page's time."""
    before, _, after = reverse(name, args=[_ID]).partition(str(_ID))
    return lambda pk: f"{before}{int(pk)}{after}"


def _project_filters() -> dict[str, Callable[..., Any]]:
    """Every filter of the template libraries (`templatetags/`) of the project's own apps."""
    own = tuple(
        f"{config.name}."
        for config in apps.get_app_configs()
        if Path(config.path).parent == Path(settings.BASE_DIR)
    )
    filters: dict[str, Callable[..., Any]] = {}
    for module in sorted(get_installed_libraries().values()):
        if module.startswith(own):
            filters.update(import_module(module).register.filters)
    return filters


def environment(**options: Any) -> jinja2.Environment:
    """The environment of the `jinja2` template engine (settings.TEMPLATES)."""
    options.setdefault("trim_blocks", True)
    options.setdefault("lstrip_blocks", True)
    env = jinja2.Environment(extensions=["jinja2.ext.i18n"], **options)
    env.install_gettext_callables(gettext, ngettext)  # type: ignore[attr-defined]
    env.globals.update(url=url, url_by_id=url_by_id)
    for name, function in {**DJANGO_FILTERS, **_project_filters()}.items():
        if name in env.filters:
            raise ImproperlyConfigured(f"template filter {name!r} would replace Jinja2's own")
        env.filters[name] = function
    return env
