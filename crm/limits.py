"""A refusal because the caller did something too often: a ValidationError (forms and services
treat it like any other) that knows when to try again, so pages and the API can answer
429 Too Many Requests with a Retry-After header."""

from __future__ import annotations

import math

from django.core.exceptions import ValidationError
from django.http import HttpResponse


class RateLimited(ValidationError):
    """Too many of something; `retry_after` is the number of seconds until one more is allowed."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message, code="rate_limited")
        self.retry_after = max(1, math.ceil(retry_after))


def mark_rate_limited(response: HttpResponse, error: RateLimited) -> HttpResponse:
    """Make a page that shows the refusal a 429 with Retry-After."""
    response.status_code = 429
    response["Retry-After"] = str(error.retry_after)
    return response
