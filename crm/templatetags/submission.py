"""`{% submission_token %}` in a create form: the one-time token of crm.idempotency."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

from crm.idempotency import FORM_FIELD, form_token_of, new_form_token

register = template.Library()


@register.simple_tag(takes_context=True)
def submission_token(context: dict[str, Any]) -> SafeString:
    """A hidden field with a new token, or the one this form was sent with when it is shown
    again with its errors (so a double click after a correction is still caught)."""
    request = context.get("request")
    token = (form_token_of(request) if request is not None else None) or new_form_token()
    return format_html('<input type="hidden" name="{}" value="{}">', FORM_FIELD, token)
