"""`{% jinja "app/partials/rows.jinja" %}`: a Jinja2 partial inside a Django template (see
`crm.templating` for why and when)."""

from __future__ import annotations

from typing import Any, cast

from django import template
from django.template import engines
from django.template.context import Context
from django.utils.safestring import SafeString, mark_safe

register = template.Library()


@register.simple_tag(takes_context=True)
def jinja(context: Context, template_name: str) -> SafeString:
    """`template_name` rendered by the Jinja2 engine with the including template's context.
    Jinja2 escapes every value it renders (autoescape), so its output is safe HTML."""
    partial = engines["jinja2"].get_template(template_name)
    return mark_safe(partial.render(cast(dict[str, Any], context.flatten())))
