"""Errors in the API's shape: a service's django ValidationError becomes a 400 whose keys are
the same field names the service used (`non_field_errors` for a message about the whole); a
RateLimited refusal becomes a 429 with Retry-After."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler

from crm.limits import RateLimited


def validation_error_from_django(error: DjangoValidationError) -> exceptions.ValidationError:
    """The DRF error that carries the same field keys and messages as `error`."""
    if hasattr(error, "error_dict"):
        detail: dict[str, list[str]] = {}
        for field_name, messages in error.message_dict.items():
            key = api_settings.NON_FIELD_ERRORS_KEY if field_name == "__all__" else field_name
            detail.setdefault(key, []).extend(messages)
        return exceptions.ValidationError(detail)
    return exceptions.ValidationError({api_settings.NON_FIELD_ERRORS_KEY: error.messages})


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, RateLimited):
        # 429 with Retry-After, like the throttles.
        exc = exceptions.Throttled(wait=exc.retry_after, detail=" ".join(exc.messages))
    elif isinstance(exc, DjangoValidationError):
        exc = validation_error_from_django(exc)
    return exception_handler(exc, context)
