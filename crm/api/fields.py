"""Serializer fields shared by the API's inputs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db.models import QuerySet
from rest_framework import serializers


class KeyRelatedField(serializers.SlugRelatedField[Any]):
    """A related object named by a key (an external id, a code). A key holding a NUL character
    is answered as an invalid value: PostgreSQL text cannot hold one, so looking it up would
    fail in the database instead of naming the field."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, str) and "\x00" in data:
            self.fail("invalid")
        return super().to_internal_value(data)


def choices_from(
    serializer: serializers.Serializer[Any], querysets: Mapping[str, QuerySet[Any] | None]
) -> None:
    """Narrow each named related field of `serializer` (one id or a list of ids) to the objects
    of its queryset, the caller's selector. A field left without one keeps the queryset it was
    declared with (`none()`: the schema generator's, where every id is refused)."""
    for name, queryset in querysets.items():
        if queryset is None:
            continue
        field = serializer.fields[name]
        relation = (
            field.child_relation if isinstance(field, serializers.ManyRelatedField) else field
        )
        relation.queryset = queryset  # type: ignore[attr-defined]
